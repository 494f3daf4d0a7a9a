"""Settings from the environment (``BRANCHNET_*``) or a ``.env`` file; the only place configuration enters."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """branchnet settings. Every field can be set as ``BRANCHNET_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="BRANCHNET_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where regions, caches and results are stored.")
    shared_dir: Path = Field(
        default=REPO_ROOT.parent / "shared", description="Read-only real data and benchmark instances."
    )
    leaflet_dir: Path = Field(
        default=REPO_ROOT / "node_modules" / "leaflet" / "dist",
        description="Leaflet's dist folder, installed from the npm registry by `make setup`.",
    )
    time_limit_s: float = Field(default=30.0, gt=0, le=86_400, description="Default solver time limit.")
    seed: int = Field(default=0, ge=0, description="Default random seed.")
    workers: int = Field(default=2, ge=1, le=64, description="Solver threads.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/branchnet.db. postgresql+psycopg://... for PostGIS.",
    )
    dask_scheduler: str | None = Field(default=None, description="Dask scheduler address; runs go there when set.")
    run_workers: int = Field(default=1, ge=1, le=64, description="Concurrent runs on the local process pool.")
    run_max_attempts: int = Field(default=2, ge=1, le=10, description="Attempts of a run whose worker was lost.")
    server_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes of `branchnet serve` on its one port; Python serves one request at a time per "
        "process, so more processes use more cores. They share the run queue through leases.",
    )
    run_lease_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="A running run's lease: its worker renews it every third of this; a run whose lease expires "
        "is lost and queued again by any server on the database.",
    )
    max_upload_mb: float = Field(default=200.0, gt=0, description="Largest accepted upload, per file.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list).")
    log_json: bool = Field(default=True, description="Structured (JSON) logs from the server.")
    rate_limit_per_s: float = Field(
        default=50.0,
        ge=0,
        description="Requests per second each API key (or, without a valid key, each client address) may make on "
        "average, in this process; 0 turns the rate limit off.",
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="Requests a key may make at once above that rate.")
    behind_https: bool = Field(
        default=False,
        description="Clients reach the service over https (directly or through a proxy): send "
        "Strict-Transport-Security.",
    )

    @property
    def regions_dir(self) -> Path:
        return self.data_dir / "regions"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def files_dir(self) -> Path:
        """The file store of the service: uploads, organisations' regions and run results."""
        return self.data_dir / "files"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'branchnet.db').resolve()}"
