"""A config's source: a URL, or the name of an environment variable holding one."""

from __future__ import annotations

import pytest

from ml.config.models import Source as SourceConfig
from ml.data.sources import open_source, source_url
from ml.errors import DataSourceError


def test_url_from_the_named_environment_variable() -> None:
    config = SourceConfig(dsn_env="LENDING_DSN")
    url = source_url(config, {"LENDING_DSN": "postgresql://bob:s3cret@db.example/lending"})
    assert url.host == "db.example" and url.password == "s3cret"
    assert source_url(SourceConfig(url="var/demo.db")).get_backend_name() == "sqlite"


def test_unset_variable_is_named_in_the_error() -> None:
    with pytest.raises(DataSourceError, match="LENDING_DSN") as caught:
        source_url(SourceConfig(dsn_env="LENDING_DSN"), {})
    assert "source.dsn_env" in str(caught.value)


def test_bad_url_in_the_variable_never_shows_the_password() -> None:
    with pytest.raises(DataSourceError) as caught:
        source_url(SourceConfig(dsn_env="DSN"), {"DSN": "postgresql://bob:s3cret@host:notaport/x"})
    assert "DSN" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.mark.integration
def test_wrong_credentials_name_the_user_not_the_password() -> None:
    url = source_url(
        SourceConfig(dsn_env="DSN"),
        {"DSN": "postgresql://no_such_role:s3cret@127.0.0.1:5432/postgres"},
    )
    with pytest.raises(DataSourceError) as caught:
        open_source(url)
    message = str(caught.value)
    assert "no_such_role" in message and "127.0.0.1:5432" in message
    assert "s3cret" not in message
