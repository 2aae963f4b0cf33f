"""Every Redis connection of PENNY is made here, so credentials and TLS are applied in one place.

REDIS_URL carries the server, the database and the credentials: `redis://[user:password@]host:port/db`
(`redis://:password@…` for `requirepass`; percent-encode `@ : /` in a password). `rediss://…` speaks TLS:
the server's certificate is always verified (against REDIS_TLS_CA_FILE, or the system's CAs when it is empty)
and its host name checked; REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE add a client certificate for a server
with `tls-auth-clients yes`. Clients that use this module: the API (its store and the audit archiver), the
worker hosts, the Celery producer and workers (`celery_conf`: broker_use_ssl), Flower
(`workers.flower_app`), deploy/stack.py and the benchmark.

`RedisEndpoint.verify()` is what start-up calls: a wrong user, password or TLS setting stops the process
with a ConfigError naming REDIS_URL with its password masked; a Redis that does not answer yet is not an
error (the clients retry, as before).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import redis

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings

SCHEMES = ("redis", "rediss", "unix")
VERIFY_TIMEOUT_S = 3.0


def redacted_url(url: str) -> str:
    """url with its password replaced by `***` (the user name is kept: it says which ACL user is meant)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_url(name: str, url: str) -> str:
    """url if it is a Redis URL this module can connect with; ConfigError naming `name` (not the password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL ({exc}): {redacted_url(url)}") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"{name} must start with redis://, rediss:// (TLS) or unix://, got "
                          f"{redacted_url(url)!r}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name} names no host: {redacted_url(url)!r}")
    return url


@dataclass(frozen=True)
class RedisEndpoint:
    """Where Redis is and how to log in: the URL (with its credentials) and the TLS files for rediss://."""

    url: str = field(repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisEndpoint:
        """The endpoint of REDIS_URL and REDIS_TLS_*."""
        return cls(settings.redis_url, ca_file=settings.redis_tls_ca_file, cert_file=settings.redis_tls_cert_file,
                   key_file=settings.redis_tls_key_file)

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

    @property
    def redacted(self) -> str:
        """The URL as it may be logged or shown: the password masked."""
        return redacted_url(self.url)

    def ssl_options(self) -> dict[str, Any]:
        """redis-py's (and kombu's) ssl_* arguments for rediss://: verification required; {} otherwise."""
        if not self.tls:
            return {}
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
        if self.ca_file:
            options["ssl_ca_certs"] = self.ca_file
        if self.cert_file:
            options["ssl_certfile"] = self.cert_file
            options["ssl_keyfile"] = self.key_file
        return options

    def client(self, **options: Any) -> redis.Redis:
        """A client of this endpoint; `options` are redis-py's (timeouts in seconds, retry...)."""
        return redis.Redis.from_url(self.url, **{**self.ssl_options(), **options})

    def celery_conf(self) -> dict[str, Any]:
        """Celery settings for this broker: the URL and, for rediss://, broker_use_ssl (without it kombu
        would connect to rediss:// without checking the server's certificate)."""
        conf: dict[str, Any] = {"broker_url": self.url}
        if self.tls:
            conf["broker_use_ssl"] = self.ssl_options()  # kombu hands these to redis-py's SSLConnection
        return conf

    def verify(self, *, timeout_s: float = VERIFY_TIMEOUT_S) -> bool:
        """Log in once: True if Redis answered, False if it is unreachable (not an error: clients retry);
        ConfigError, naming REDIS_URL with the password masked, when Redis refuses the credentials or TLS fails."""
        client = self.client(socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            return bool(client.ping())
        except redis.AuthenticationError as exc:
            raise ConfigError(f"REDIS_URL {self.redacted}: Redis refused the login ({exc}); check the user "
                              f"and password in REDIS_URL") from None
        except redis.ResponseError as exc:
            # NOAUTH (a password is required but REDIS_URL has none), NOPERM (an ACL user without PING).
            raise ConfigError(f"REDIS_URL {self.redacted}: {exc}") from None
        except redis.ConnectionError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLError):
                raise ConfigError(f"REDIS_URL {self.redacted}: the TLS handshake failed ({cause}); check "
                                  f"REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE") from None
            if isinstance(cause, ConnectionResetError) and not self.tls:
                raise ConfigError(f"REDIS_URL {self.redacted}: the server closed the connection; if it "
                                  f"speaks only TLS, use rediss://") from None
            return False
        except redis.RedisError:
            return False
        finally:
            client.close()


def connect(settings: Settings, **options: Any) -> redis.Redis:
    """A Redis client for REDIS_URL with its credentials and TLS settings; options as for redis-py."""
    return RedisEndpoint.from_settings(settings).client(**options)


def verify(settings: Settings) -> bool:
    """RedisEndpoint.verify() for REDIS_URL: ConfigError on wrong credentials or TLS, False if unreachable."""
    return RedisEndpoint.from_settings(settings).verify()
