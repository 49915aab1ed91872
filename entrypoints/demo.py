"""``rtml demo-data`` and ``rtml demo``: the demo marketplace and the main job on it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from entrypoints.options import cache_options, open_cache
from ml.config import load_model_config
from ml.data.fetch import pull_window
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.data.windows import resolve_windows
from ml.demo import DemoResult, DemoSpec, load_demo_data, verify_demo_data
from ml.demo.generator import DEFAULT_END_DATE
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.errors import RtmlError
from ml.features import FeaturePipeline, vw_lines, xgboost_layout
from ml.features.fitted import CategoricalState, FeatureState

DEFAULT_DB = "sqlite:///var/demo.db"
DEMO_MODEL = "lender_match"


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str) -> date:
    if value == "today":
        return date.today()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise click.BadParameter(f"expected YYYY-MM-DD or 'today', got {value!r}") from exc


db_option = click.option(
    "--db",
    default=DEFAULT_DB,
    show_default=True,
    envvar="RTML_DEMO_DB",
    help="Where to write: a SQLAlchemy URL (sqlite:///path, postgresql://user@host/db) or a "
    "SQLite file path. Env: RTML_DEMO_DB.",
)


@click.command("demo-data")
@db_option
@click.option(
    "--businesses",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of businesses; applications are ~10x this. Scales to millions "
    "(generated and written in blocks, memory stays bounded).",
)
@click.option(
    "--seed",
    default=42,
    show_default=True,
    type=int,
    help="Random seed: the same seed, size and end date give identical data.",
)
@click.option(
    "--end-date",
    default=DEFAULT_END_DATE.isoformat(),
    show_default=True,
    callback=_parse_date,
    help="Last day of the two years of applications (or 'today').",
)
@click.option(
    "--force", is_flag=True, help="Regenerate even if the database already holds this data."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Only re-read the tables and check them against the fingerprints stored at generation.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo_data(
    db: str, businesses: int, seed: int, end_date: date, force: bool, verify: bool, quiet: bool
) -> None:
    """Generate the demo small-business lending marketplace.

    \b
    Tables written (replaced in one transaction; indexes for the model queries):
      businesses     industry, state, months in business, annual revenue,
                     average monthly deposits, credit score, existing debt
      lenders        ~40 lenders
      loan_products  product type, min credit score / revenue / months in
                     business, max amount, industries served
      applications   business x product, submitted_at over two years, requested amount
      outcomes       approved 0/1 (hidden nonlinear rule, noise, drift), funded amount
      demo_meta      what generated the data, with per-table fingerprints

    Revenue is missing for ~20% of businesses, deposits for ~8%, credit score for
    ~5%; amounts are skewed and some industries are rare. A rerun with the same
    options reuses the data already there (use --force to rebuild).

    \b
    Examples:
      rtml demo-data
      rtml demo-data --db postgresql://postgres@127.0.0.1/demo --businesses 1000000
    """
    url = parse_db_url(db)
    if verify:
        _verify(url)
        return
    spec = DemoSpec(businesses=businesses, seed=seed, end_date=end_date)
    result = load_demo_data(url, spec, force=force, progress=not quiet)
    _print_result(result)


def _print_result(result: DemoResult) -> None:
    spec = result.spec
    if result.reused:
        click.echo(
            f"Demo data already in {result.database} (seed {spec.seed}, "
            f"{spec.businesses} businesses): reused. --force rebuilds it."
        )
    else:
        click.echo(
            f"Wrote demo data to {result.database} in {result.seconds:.1f}s "
            f"(seed {spec.seed}, {spec.businesses} businesses, history to {spec.end_date})."
        )
    for table, fingerprint in result.fingerprints.items():
        click.echo(f"  {table:<14} {fingerprint.rows:>10,} rows   sha256 {fingerprint.sha256}")
    click.echo(f"  approval rate  {result.approval_rate:.1%}")


def _verify(url: object) -> None:
    stored, actual = verify_demo_data(url)  # type: ignore[arg-type]
    bad = [name for name, fp in stored.fingerprints.items() if actual.get(name) != fp]
    for name, fp in actual.items():
        mark = (
            "ok"
            if stored.fingerprints.get(name) == fp
            else f"MISMATCH (stored: {stored.fingerprints.get(name)})"
        )
        click.echo(f"  {name:<14} {fp}   {mark}")
    if bad:
        raise RtmlError(
            f"{stored.database}: tables changed since generation: {', '.join(bad)}",
            hint="run `rtml demo-data --force` to regenerate",
        )
    click.echo(f"Verified {stored.database}: every table matches its fingerprint.")


@click.command("demo")
@db_option
@click.option(
    "--configs-dir",
    default="configs",
    show_default=True,
    envvar="RTML_CONFIGS_DIR",
    help="Folder holding <model>/<version>.json. Env: RTML_CONFIGS_DIR.",
)
@cache_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(db: str, configs_dir: str, no_cache: bool, cache_open_windows: bool, quiet: bool) -> None:
    """Run the main job end to end on the embedded demo database.

    What `make demo` runs. Today: generate (or reuse) the demo marketplace data,
    validate the lender_match config and fit its feature pipeline on the training
    window. Training, registering, promoting and serving join as they land.
    """
    click.echo("== 1. Demo data")
    url = parse_db_url(db)
    result = load_demo_data(url, DemoSpec(), progress=not quiet)
    _print_result(result)

    click.echo("\n== 2. Model config and feature pipeline")
    config = load_model_config(DEMO_MODEL, root=Path(configs_dir))
    split = resolve_windows(config.windows)
    with open_source(url) as source:
        train = pull_window(
            source,
            APPLICATIONS_IN_WINDOW,
            split.train,
            time_column=split.time_column,
            cache=open_cache(no_cache),
            cache_open_windows=cache_open_windows,
            label="train",
        ).frame
    fitted = FeaturePipeline(config).fit(train)
    names, _ = xgboost_layout(fitted)
    click.echo(
        f"{config.name}: {len(config.features)} features, {len(config.crosses)} crosses; "
        f"fitted on {len(train):,} applications in the train window {split.train}"
    )
    for state in fitted.features:
        click.echo(f"  {_describe_state(state)}")
    lines = vw_lines(fitted, train.iloc[:1], labels=train["approved"].iloc[:1])
    click.echo(f"XGBoost matrix: {len(names)} columns; a VW example:\n  {lines[0].as_py()}")
    click.echo("\nNext: training, registry and serving land with their issues; see README.md.")


def _describe_state(state: FeatureState) -> str:
    if isinstance(state, CategoricalState):
        learned = f"{len(state.levels)} levels" + (
            f", default {state.default!r}" if state.default else ""
        )
    else:
        learned = "no default" if state.default is None else f"default {state.default:,.6g}"
        if state.edges is not None:
            learned += (
                f", {len(state.edges) + 1} buckets, edges {[round(e, 4) for e in state.edges]}"
            )
    only = " (cross-only)" if state.cross_only else ""
    return f"{state.name:<22} {state.kind:<11} {learned}{only}"
