"""The region import request: a streamed ``multipart/form-data`` upload of the raw files, or a JSON registration of
files already on the server. Uploads land in a fresh folder of the file store under names the service makes up
(``osm.osm.pbf``, ``population.geojson``, ...): a client's file name only lends its extension, checked against an
allow-list, and never reaches the file system. Each file may be at most ``max_upload_mb``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from geodata.region import RegionSources
from service.api.deps import Services
from service.errors import (
    BadRequestError,
    PayloadTooLargeError,
    ServiceError,
)
from service.plans.scenario import describe
from service.store.files import FileStore
from service.store.regions import check_name

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
    folder = files.new_upload_dir()
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


def check_speeds(req: ImportRequest, path: Path) -> None:
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
