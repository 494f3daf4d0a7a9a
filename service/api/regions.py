"""Regions (upload or register, list, show, delete) and scenarios (CRUD) of the HTTP API.

Regions: ``POST /regions`` (admin) takes either a ``multipart/form-data`` upload of the raw files — ``osm``,
``population``, ``branches`` and optionally ``population_table``, ``settlements`` and ``speeds``, with the form
fields ``name`` and the field choices of ``branchnet region import`` — or a JSON body
``{"name": ..., "paths": {"osm": "/server/path", ...}, ...}`` that registers files already on the server (under
the shared data folder or ``<data_dir>/sources``). Uploads are streamed to a fresh folder of the file store under
names the service makes up (``osm.osm.pbf``, ``population.geojson``, ...): a client's file name only lends its
extension, checked against an allow-list, and never reaches the file system. Each file may be at most
``max_upload_mb``. The import (:func:`geodata.region.prepare_region`) runs in a worker thread; the region is
saved atomically and a :class:`service.store.db.Region` row records its summary and the current network's KPIs. A
failed import stores nothing.

Scenarios: the JSON of :class:`service.plans.scenario.Scenario`, validated on every write (422 naming the field); its
``region`` must be a region of the caller's organisation. ``PUT`` replaces the body and bumps ``version``
(``If-Match: <version>`` makes it conditional).

Everything is scoped to the caller's organisation: another organisation's id answers 404, exactly like a missing
one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from geodata.errors import GeodataError
from geodata.region import RegionData, RegionSources, prepare_region
from service.api.app import Services, db, require, services
from service.api.auth import Principal
from service.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ServiceError,
    UnsupportedMediaError,
)
from service.plans.location import region_kpis
from service.plans.scenario import Scenario, describe
from service.store.db import Region, Run, now
from service.store.db import Scenario as ScenarioRow
from service.store.files import FileStore
from service.store.regions import check_name, save_region

router = APIRouter()
log = logging.getLogger("branchnet.api.regions")

MB = 1024 * 1024
#: File fields of an upload and the extensions each accepts (longest first); stored as ``<field><extension>``.
FILE_TYPES: dict[str, tuple[str, ...]] = {
    "osm": (".osm.pbf", ".osm.bz2", ".osm.gz", ".pbf", ".osm"),
    "population": (".geojson", ".json", ".gpkg", ".fgb", ".csv"),
    "branches": (".geojson", ".json", ".gpkg", ".fgb", ".csv"),
    "population_table": (".csv",),
    "settlements": (".geojson", ".json", ".gpkg", ".fgb", ".csv"),
    "speeds": (".yaml", ".yml", ".toml"),
}
REQUIRED_FILES = ("osm", "population", "branches")
#: Text fields of an upload (the options of ``branchnet region import``).
TEXT_FIELDS = ("name", "join_on", "population_field", "area_field", "group_field", "id_field", "crs", "age_shares")
MAX_TEXT_BYTES = 1024
MAX_JSON_BYTES = 1 * MB
ACTIVE_RUNS = ("queued", "running")

Viewer = Annotated[Principal, Depends(require("viewer"))]
Planner = Annotated[Principal, Depends(require("planner"))]
Admin = Annotated[Principal, Depends(require("admin"))]
DB = Annotated[Session, Depends(db)]
Svc = Annotated[Services, Depends(services)]

# Imports are CPU- and memory-heavy: one at a time per process (this also keeps warnings capture unshared).
_IMPORT_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------------------------
# helpers


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python values and non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def json_body(request: Request) -> Any:
    """The request body as JSON: 415 for another content type, 413 above 1 MB, 422 naming where it is malformed."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaError(f"send JSON with 'Content-Type: application/json', not {_media(media)}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise PayloadTooLargeError(f"the JSON body is larger than {MAX_JSON_BYTES // MB} MB")
    if not raw.strip():
        raise BadRequestError("the request body is empty; send a JSON object")
    try:
        return json.loads(bytes(raw), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadRequestError("the request body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadRequestError("malformed JSON: nested too deeply") from None


def _media(media: str) -> str:
    return repr(media) if media else "a body without a Content-Type"


def _no_constant(name: str) -> Any:
    raise BadRequestError(f"malformed JSON: {name} is not a JSON number")


Body = Annotated[Any, Depends(json_body)]


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` inlined (for ``openapi_extra``, where ``#/$defs`` would not resolve)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk({**defs[ref.split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def _json_request(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# ---------------------------------------------------------------------------------------------------------------
# regions: summaries and storage


def region_summary(region: RegionData) -> dict[str, Any]:
    """What the API shows of a region: its size, networks, notes, branches and the current network's KPIs."""
    meta = region.meta
    kpis = region_kpis(region, np.ones(len(region.branches), dtype=bool))
    branches = [{"id": str(b), "name": str(n)} for b, n in zip(region.branches["branch_id"], region.branches["name"],
                                                                strict=True)]  # fmt: skip
    out = {
        "population": meta.get("population"),
        "demand_points": meta.get("demand_points"),
        "branches": meta.get("branches"),
        "crs": meta.get("crs"),
        "networks": meta.get("networks"),
        "notes": meta.get("notes", []),
        "max_branch_snap_m": meta.get("max_branch_snap_m"),
        "sources": meta.get("sources"),
        "digests": meta.get("digests"),
        "attribution": meta.get("attribution"),
        "branch_list": branches,
        "kpis": kpis,
    }
    return dict(jsonable(out))


def store_region(
    session: Session, files: FileStore, org_id: str, region: RegionData, summary: dict[str, Any]
) -> Region:
    """Save ``region`` into the organisation's regions folder and insert its row; commit. 409 on a name clash.

    The region is first written to a private staging folder; the row is inserted (its unique (org, name) key
    reserves the name until the commit) before the folder is renamed into place, so two imports of one name never
    overwrite each other and a failure leaves neither a row nor a folder.
    """
    regions_dir = files.regions_dir(org_id)
    staging = regions_dir / f".staging-{uuid.uuid4().hex}"
    target = regions_dir / region.name
    placed = False
    try:
        staged = save_region(region, staging)
        path = target.relative_to(files.root).as_posix()  # like Run.result_path: relative to the file store root
        row = Region(org_id=org_id, name=region.name, path=path, summary=summary)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise ConflictError(f"a region named {region.name!r} already exists in your organisation") from None
        if target.exists():  # a leftover without a row (we hold the name): replace it
            os.replace(target, staging / "leftover")
        os.replace(staged, target)
        placed = True
        session.commit()
        return row
    except BaseException:
        session.rollback()
        if placed:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _region_out(row: Region, *, detail: bool) -> dict[str, Any]:
    summary = dict(row.summary or {})
    kpis = summary.pop("kpis", None) or {}
    if not detail:
        kpis = {"overall": kpis["overall"]} if "overall" in kpis else {}
        summary.pop("branch_list", None)
        summary.pop("networks", None)
        summary.pop("digests", None)
    return {"id": row.id, "name": row.name, "created_at": _iso(row.created_at), "summary": summary, "kpis": kpis}


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive datetimes of the UTC times stored)."""
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


def _own_region(session: Session, who: Principal, region_id: str) -> Region:
    row = session.get(Region, region_id)
    if row is None or row.org_id != who.org_id:
        raise NotFoundError(f"region {region_id!r} not found")
    return row


def _region_by_name(session: Session, org_id: str, name: str) -> Region | None:
    row: Region | None = session.scalar(select(Region).where(Region.org_id == org_id, Region.name == name))
    return row


# ---------------------------------------------------------------------------------------------------------------
# regions: the import request (multipart upload or server paths)


@dataclass
class ImportRequest:
    """A region import: its name, the source files, the field choices; ``labels`` name the files in messages."""

    name: str
    files: dict[str, Path]
    options: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    upload_dir: Path | None = None

    def sources(self) -> RegionSources:
        opts = self.options
        shares = opts.get("age_shares")
        return RegionSources(
            osm=str(self.files["osm"]),
            population=str(self.files["population"]),
            branches=str(self.files["branches"]),
            population_table=_opt_path(self.files.get("population_table")),
            settlements=_opt_path(self.files.get("settlements")),
            speeds=_opt_path(self.files.get("speeds")),
            join_on=opts.get("join_on"),
            population_field=opts.get("population_field"),
            area_field=opts.get("area_field"),
            group_field=opts.get("group_field"),
            id_field=opts.get("id_field"),
            crs=opts.get("crs"),
            age_shares=_parse_shares(shares) if shares else None,
        )

    def public_sources(self, sources: RegionSources) -> dict[str, Any]:
        """The sources as shown to clients: uploaded files by their field and client name, never a server path."""
        out: dict[str, Any] = {}
        for key, value in vars(sources).items():
            out[key] = self.labels.get(key, value) if key in FILE_TYPES and value is not None else value
        return out

    def explain(self, message: str) -> str:
        """``message`` with the upload folder's paths replaced by the field and file name the client knows."""
        if self.upload_dir is None:
            return message
        for key, path in self.files.items():
            message = message.replace(str(path), self.labels[key])
        return message.replace(str(self.upload_dir), "upload")


def _opt_path(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _parse_shares(text: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(x) for x in text.split(","))
    except ValueError:
        raise BadRequestError(f"age_shares: {text!r} is not three numbers, e.g. 0.2,0.6,0.2") from None
    return (a, b, c)


def _check_options(name: str | None, options: dict[str, str]) -> str:
    if not name:
        raise BadRequestError("name: missing; give the region a name (lower-case letters, digits, '-' or '_')")
    try:
        check_name(name)
    except ValueError as exc:
        raise BadRequestError(f"name: {exc}") from None
    if "age_shares" in options:
        _parse_shares(options["age_shares"])
    if "crs" in options:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(options["crs"])
        except CRSError as exc:
            raise BadRequestError(f"crs: {options['crs']!r} is not a coordinate reference system ({exc})") from None
    return name


def extension(field_name: str, filename: str) -> str:
    """The allowed extension of an uploaded ``filename`` (case-insensitive); 422 naming the field otherwise."""
    lower = filename.strip().lower()
    for ext in FILE_TYPES[field_name]:
        if lower.endswith(ext) and len(lower) > len(ext):
            return ext
    shown = filename if len(filename) <= 80 else filename[:77] + "..."
    raise BadRequestError(f"{field_name}: the file {shown!r} is not of a supported type; "
                            f"use {', '.join(FILE_TYPES[field_name])}")  # fmt: skip


class UploadTooLargeError(Exception):
    def __init__(self, field_name: str) -> None:
        self.field_name = field_name


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    handle: IO[bytes] | None = None
    size: int = 0
    text: bytearray = field(default_factory=bytearray)


class MultipartUpload:
    """Streams a ``multipart/form-data`` body into ``folder``: files under generated names, within ``limit`` bytes."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self.files: dict[str, Path] = {}
        self.labels: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_header_name", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)
        if len(getattr(self, attr)) > 8192:
            raise BadRequestError("a multipart part header is too long")

    def _begin(self) -> None:
        self._part = _Part()
        self._disposition = b""

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        part = self._part
        part.name = name
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if not name:
            raise BadRequestError("a multipart part has no field name (Content-Disposition: form-data; name=...)")
        if name in self.files or name in self.text:
            raise BadRequestError(f"{name}: given more than once")
        if name in FILE_TYPES:
            if part.filename is None:
                raise BadRequestError(f"{name}: send a file (a multipart part with a filename), not a text field")
            if part.filename == "":  # an HTML form's empty file input: the field is absent unless it has data
                return
            ext = extension(name, part.filename)
            path = self.folder / f"{name}{ext}"
            part.handle = path.open("wb")
            self.files[name] = path
            self.labels[name] = f"{name} ({_printable(part.filename)})"
        elif name in TEXT_FIELDS:
            if part.filename is not None:
                raise BadRequestError(f"{name}: a text field, not a file")
        else:
            raise BadRequestError(f"unknown form field {_printable(name)!r}; files: {', '.join(FILE_TYPES)}; "
                                    f"fields: {', '.join(TEXT_FIELDS)}")  # fmt: skip

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        size = end - start
        part.size += size
        if part.name in FILE_TYPES:
            if part.size > self.limit:
                raise UploadTooLargeError(part.name)
            if part.handle is not None:
                part.handle.write(data[start:end])
            elif size:
                raise BadRequestError(f"{part.name}: a file part with an empty file name")
        else:
            if part.size > MAX_TEXT_BYTES:
                raise BadRequestError(f"{part.name}: longer than {MAX_TEXT_BYTES} bytes")
            part.text += data[start:end]

    def _end(self) -> None:
        part = self._part
        if part.handle is not None:
            part.handle.close()
            part.handle = None
            if part.size == 0:
                raise BadRequestError(f"{part.name}: the uploaded file {self.labels[part.name]} is empty")
        elif part.name in TEXT_FIELDS:
            try:
                value = part.text.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise BadRequestError(f"{part.name}: not UTF-8 text") from None
            if value:
                self.text[part.name] = value

    def close(self) -> None:
        if self._part.handle is not None:
            self._part.handle.close()


def _printable(text: str) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 80 else text[:77] + "..."


async def read_upload(request: Request, files: FileStore, limit_mb: float) -> ImportRequest:
    """Stream a multipart upload into a new upload folder; remove it again on any error."""
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestError("multipart/form-data without a boundary")
    limit = int(limit_mb * MB)
    folder = files.upload_dir(uuid.uuid4().hex)
    upload = MultipartUpload(folder, limit)
    try:
        parser = MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except UploadTooLargeError as exc:
            raise PayloadTooLargeError(f"{exc.field_name}: the file exceeds the upload limit of {limit_mb:g} MB "
                                    "per file (BRANCHNET_MAX_UPLOAD_MB)") from None  # fmt: skip
        except ServiceError:
            raise
        except Exception as exc:  # python-multipart's parse errors
            raise BadRequestError(f"malformed multipart/form-data body ({exc})") from None
        finally:
            upload.close()
        options = {k: v for k, v in upload.text.items() if k != "name"}
        name = _check_options(upload.text.get("name"), options)
        missing = [f for f in REQUIRED_FILES if f not in upload.files]
        if missing:
            raise BadRequestError("; ".join(f"{f}: missing; upload the {_WHAT[f]}" for f in missing))
        return ImportRequest(name, dict(upload.files), options, dict(upload.labels), folder)
    except BaseException:
        files.remove(folder)
        raise


_WHAT = {
    "osm": "OSM extract (.osm.pbf or .osm)",
    "population": "population points or census-area polygons (GeoJSON, GeoPackage or CSV)",
    "branches": "branches (CSV with coordinates, GeoJSON or GeoPackage)",
}


class RegionPaths(BaseModel):
    model_config = ConfigDict(extra="forbid")

    osm: str
    population: str
    branches: str
    population_table: str | None = None
    settlements: str | None = None
    speeds: str | None = None


class RegisterRegion(BaseModel):
    """Register files already on the server (under the shared data folder or ``<data_dir>/sources``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Region name: lower-case letters, digits, '-' and '_'.")
    paths: RegionPaths
    join_on: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    population_field: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    area_field: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    group_field: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    id_field: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    crs: str | None = Field(default=None, max_length=MAX_TEXT_BYTES)
    age_shares: str | None = Field(default=None, max_length=MAX_TEXT_BYTES, description="e.g. 0.2,0.6,0.2")


def allowed_roots(svc: Services) -> list[Path]:
    """Folders whose files an admin may register by path: the shared data and ``<data_dir>/sources``."""
    return [svc.settings.shared_dir.resolve(), (svc.settings.data_dir / "sources").resolve()]


def read_registration(data: Any, svc: Services) -> ImportRequest:
    if not isinstance(data, dict):
        raise BadRequestError(f"send a JSON object with name and paths, not {type(data).__name__}")
    try:
        spec = RegisterRegion.model_validate(data)
    except ValidationError as exc:
        raise BadRequestError(describe(exc)) from None
    options = {k: v for k, v in spec.model_dump(exclude={"name", "paths"}).items() if v is not None}
    name = _check_options(spec.name, options)
    roots = allowed_roots(svc)
    files: dict[str, Path] = {}
    for key, value in spec.paths.model_dump().items():
        if value is None:
            continue
        path = Path(value)
        if not path.is_absolute():
            raise BadRequestError(f"paths.{key}: {value!r} is not an absolute path on the server")
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            raise BadRequestError(f"paths.{key}: {value!r} is outside the folders regions may be registered "
                                    f"from ({', '.join(map(str, roots))})")  # fmt: skip
        if not resolved.is_file():
            raise BadRequestError(f"paths.{key}: {value!r} is not a file on the server")
        if not any(resolved.name.lower().endswith(ext) for ext in FILE_TYPES[key]):
            raise BadRequestError(f"paths.{key}: {value!r} is not of a supported type; "
                                    f"use {', '.join(FILE_TYPES[key])}")  # fmt: skip
        files[key] = resolved
    return ImportRequest(name, files, options)


def _check_speeds(req: ImportRequest, path: Path) -> None:
    """422 unless ``path`` is a speed profile (geodata reports some malformed files with bare YAML/type errors)."""
    import yaml

    from geodata.network import SpeedProfile

    try:
        SpeedProfile.from_file(path)
    except (ValueError, TypeError, AttributeError, yaml.YAMLError) as exc:
        message = req.explain(str(exc))
        label = req.labels.get("speeds", str(path))
        if not message.startswith(label):
            message = f"{label}: not a valid speed profile ({message})"
        raise BadRequestError(message) from None


def run_import(svc: Services, session: Session, who: Principal, req: ImportRequest) -> Region:
    """Prepare, save and register the region (blocking: call it in a worker thread)."""
    try:
        if _region_by_name(session, who.org_id, req.name) is not None:
            raise ConflictError(f"a region named {req.name!r} already exists in your organisation; "
                                     "delete it first or choose another name")  # fmt: skip
        session.rollback()  # end the read transaction: SQLite must not hold it during the import
        sources = req.sources()
        if sources.speeds:
            _check_speeds(req, Path(sources.speeds))
        with _IMPORT_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                region = prepare_region(req.name, sources, cache_dir=svc.settings.cache_dir)
            except (GeodataError, ValueError, KeyError) as exc:
                raise BadRequestError(req.explain(str(exc))) from None
            region.meta["sources"] = req.public_sources(sources)  # region.json never holds upload paths
            summary = region_summary(region)
        notes = [req.explain(str(w.message)) for w in caught
                 if not issubclass(w.category, DeprecationWarning | FutureWarning)]  # fmt: skip
        summary["warnings"] = list(dict.fromkeys(notes))[:100]
        row = store_region(session, svc.files, who.org_id, region, summary)
        log.info("region imported", extra={"fields": {"org": who.org_id, "region": row.id, "name": row.name}})
        return row
    finally:
        if req.upload_dir is not None:
            svc.files.remove(req.upload_dir)


_FILE_DOC = {f: {"type": "string", "format": "binary", "description": ", ".join(e)} for f, e in FILE_TYPES.items()}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", *REQUIRED_FILES],
                    "properties": {
                        **_FILE_DOC,
                        **{f: {"type": "string"} for f in TEXT_FIELDS},
                    },
                }
            },
            "application/json": {"schema": _inline_refs(RegisterRegion.model_json_schema())},
        },
    }
}


@router.post("/regions", status_code=201, tags=["regions"], openapi_extra=_UPLOAD_DOC)
async def create_region(request: Request, who: Admin, svc: Svc, session: DB, response: Response) -> dict[str, Any]:
    """Import a region from uploaded files (multipart) or register server files (JSON); admin only.

    Returns the region with its summary and the current network's KPIs (201). 413 when a file exceeds
    ``max_upload_mb``, 422 for unreadable inputs (the message names the field), 409 when the name is taken.
    """
    await run_in_threadpool(session.close)  # hold no connection or transaction while the body streams in
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        req = await read_upload(request, svc.files, svc.settings.max_upload_mb)
    elif media == "application/json" or media.endswith("+json"):
        req = read_registration(await json_body(request), svc)
    else:
        raise UnsupportedMediaError("upload the files as multipart/form-data, or register server files with a JSON "
                                 f"body (application/json); not {_media(media)}")  # fmt: skip
    row = await run_in_threadpool(run_import, svc, session, who, req)
    response.headers["Location"] = f"{request.url.path}/{row.id}"
    return _region_out(row, detail=True)


@router.get("/regions", tags=["regions"])
def list_regions(who: Viewer, session: DB) -> list[dict[str, Any]]:
    """The organisation's regions, with their overall current-network KPIs."""
    rows = session.scalars(select(Region).where(Region.org_id == who.org_id).order_by(Region.created_at, Region.name))
    return [_region_out(r, detail=False) for r in rows]


@router.get("/regions/{region_id}", tags=["regions"])
def get_region(region_id: str, who: Viewer, session: DB) -> dict[str, Any]:
    """A region: summary, branches, networks and the current network's KPIs (overall, by group and by area)."""
    return _region_out(_own_region(session, who, region_id), detail=True)


@router.delete("/regions/{region_id}", status_code=204, tags=["regions"])
def delete_region(region_id: str, who: Admin, session: DB, svc: Svc) -> Response:
    """Delete a region and its files; 409 while scenarios use it (delete them first)."""
    row = _own_region(session, who, region_id)
    used = session.scalar(select(func.count()).select_from(ScenarioRow).where(ScenarioRow.region_id == row.id))
    if used:
        raise ConflictError(f"region {row.name!r} is used by {used} scenario(s); delete them first")
    session.delete(row)
    session.commit()
    svc.files.remove(svc.files.regions_dir(who.org_id) / row.name)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------------------------
# scenarios


def _scenario_out(row: ScenarioRow, region_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "region": region_name,
        "region_id": row.region_id,
        "version": row.version,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "body": row.body,
    }


def _validate(session: Session, who: Principal, body: Any) -> tuple[Scenario, Region]:
    """The parsed scenario and its region (of the caller's organisation); 422 naming the field otherwise."""
    spec = Scenario.parse(body, source="scenario")  # ScenarioError: 422 naming the field (service.api.app)
    if len(spec.name) > 200:
        raise BadRequestError(f"scenario: name: at most 200 characters, not {len(spec.name)}")
    region = _region_by_name(session, who.org_id, spec.region)
    if region is None:
        names = session.scalars(select(Region.name).where(Region.org_id == who.org_id).order_by(Region.name)).all()
        raise BadRequestError(f"scenario: region: region {spec.region!r} is not imported in your organisation "
                                 f"(its regions: {', '.join(names) or 'none'})")  # fmt: skip
    known = {b["id"] for b in (region.summary or {}).get("branch_list", [])}
    if known:
        for what in ("keep", "close"):
            unknown = [b for b in getattr(spec.forced, what) if b not in known]
            if unknown:
                raise BadRequestError(f"scenario: forced.{what}: unknown branch id(s) {', '.join(unknown)} in "
                                         f"region {region.name!r}")  # fmt: skip
    return spec, region


def _own_scenario(session: Session, who: Principal, scenario_id: str) -> ScenarioRow:
    row = session.get(ScenarioRow, scenario_id)
    if row is None or row.org_id != who.org_id:
        raise NotFoundError(f"scenario {scenario_id!r} not found")
    return row


def _region_name(session: Session, region_id: str) -> str:
    return session.scalar(select(Region.name).where(Region.id == region_id)) or ""


def _etag(row: ScenarioRow) -> str:
    return f'"{row.version}"'


_SCENARIO_DOC = _json_request(_inline_refs(Scenario.model_json_schema()))


@router.post("/scenarios", status_code=201, tags=["scenarios"], openapi_extra=_SCENARIO_DOC)
def create_scenario(who: Planner, body: Body, session: DB, request: Request, response: Response) -> dict[str, Any]:
    """Store a scenario (the JSON of a planner scenario file); 422 naming the field when it is invalid."""
    spec, region = _validate(session, who, body)
    row = ScenarioRow(org_id=who.org_id, region_id=region.id, name=spec.name, body=body, version=1)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # the region was deleted meanwhile
        session.rollback()
        raise ConflictError(f"region {spec.region!r} was deleted meanwhile") from None
    response.headers["Location"] = f"{request.url.path}/{row.id}"
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, region.name)


@router.get("/scenarios", tags=["scenarios"])
def list_scenarios(who: Viewer, session: DB, region: str | None = None) -> list[dict[str, Any]]:
    """The organisation's scenarios (optionally of one region, by name), oldest first."""
    query = (
        select(ScenarioRow, Region.name)
        .join(Region, Region.id == ScenarioRow.region_id)
        .where(ScenarioRow.org_id == who.org_id)
        .order_by(ScenarioRow.created_at, ScenarioRow.id)
    )
    if region is not None:
        query = query.where(Region.name == region)
    return [_scenario_out(row, name) for row, name in session.execute(query).all()]


@router.get("/scenarios/{scenario_id}", tags=["scenarios"])
def get_scenario(scenario_id: str, who: Viewer, session: DB, response: Response) -> dict[str, Any]:
    row = _own_scenario(session, who, scenario_id)
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, _region_name(session, row.region_id))


@router.put("/scenarios/{scenario_id}", tags=["scenarios"], openapi_extra=_SCENARIO_DOC)
def update_scenario(
    scenario_id: str,
    who: Planner,
    body: Body,
    session: DB,
    response: Response,
    if_match: Annotated[str | None, Header(description="Only update this version (412 otherwise).")] = None,
) -> dict[str, Any]:
    """Replace a scenario's body (validated; a rejected update changes nothing) and bump its version."""
    row = _own_scenario(session, who, scenario_id)
    if if_match is not None and if_match.strip() != "*":
        wanted = if_match.strip().removeprefix("W/").strip('"')
        if wanted != str(row.version):
            raise PreconditionFailedError(f"scenario {scenario_id!r} is at version {row.version}, not {wanted}")
    spec, region = _validate(session, who, body)
    row.body = body
    row.name = spec.name
    row.region_id = region.id
    row.version += 1
    row.updated_at = now()
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"region {spec.region!r} was deleted meanwhile") from None
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, region.name)


@router.delete("/scenarios/{scenario_id}", status_code=204, tags=["scenarios"])
def delete_scenario(scenario_id: str, who: Planner, session: DB, svc: Svc) -> Response:
    """Delete a scenario with its finished runs and their results; 409 while a run is queued or running."""
    row = _own_scenario(session, who, scenario_id)
    runs = session.scalars(select(Run).where(Run.scenario_id == row.id)).all()
    active = [r.id for r in runs if r.status in ACTIVE_RUNS]
    if active:
        raise ConflictError(f"scenario {scenario_id!r} has {len(active)} queued or running run(s) "
                                 f"({', '.join(active)}); cancel them first")  # fmt: skip
    for run in runs:
        session.delete(run)
    session.delete(row)
    session.commit()
    for run in runs:
        if run.result_path:
            svc.files.remove(svc.files.root / run.result_path)
        svc.files.remove(svc.files.run_dir(who.org_id, run.id))
    return Response(status_code=204)
