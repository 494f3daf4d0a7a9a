"""``branchnet region``: import a region from raw files, show today's access KPIs, list the regions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from service.cli._common import JsonOption, app, console, print_json, progress_bar, settings, user_errors

# geodata, the planner and GeoPandas are imported inside the commands: `branchnet batch` and `--help` start fast.

region_app = typer.Typer(help="Import and inspect regions.", no_args_is_help=True)
app.add_typer(region_app, name="region")


def kpi_table(kpis: dict[str, Any], title: str, *, by: str | None = None, limit: int = 40) -> Table:
    """Render access KPIs (overall, or by area/group) as a table."""
    from optimizer.kpis import DRIVE_BANDS_MIN

    rows = {"all": kpis["overall"]} if by is None else kpis[by]
    table = Table(title=title, title_justify="left")
    first = "area" if by == "by_area" else ("group" if by == "by_group" else "")
    table.add_column(first or "", style="bold", no_wrap=True)
    cols = [("population", "people", "{:,.0f}")]
    cols += [(f"share_within_{m}_min", f"≤{m} min", "{:.1%}") for m in DRIVE_BANDS_MIN]
    cols += [
        ("share_within_2_miles", "≤2 mi road", "{:.1%}"),
        ("mean_drive_min", "mean min", "{:.1f}"),
        ("p95_drive_min", "p95 min", "{:.1f}"),
    ]
    for _, head, _ in cols:
        table.add_column(head, justify="right")
    for name, block in list(rows.items())[:limit]:
        table.add_row(name, *[fmt.format(block.get(k, float("nan"))) for k, _, fmt in cols])
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more rows in plan.json"
    return table


@region_app.command("import")
def region_import(
    name: Annotated[str, typer.Argument(help="Region name (lower-case letters, digits, - and _).")],
    osm: Annotated[Path, typer.Option(help="OSM extract, .osm.pbf or .osm XML.")],
    population: Annotated[Path, typer.Option(help="Population points or census-area polygons.")],
    branches: Annotated[
        Path, typer.Option(help="Branches: public-library schema CSV with coordinates, GeoJSON or GPKG.")
    ],
    population_table: Annotated[Path | None, typer.Option(help="CSV of population to join to the polygons.")] = None,
    join_on: Annotated[str | None, typer.Option(help="POLYGON_FIELD=TABLE_FIELD; detected when omitted.")] = None,
    population_field: Annotated[str | None, typer.Option(help="Population column; detected when omitted.")] = None,
    area_field: Annotated[str | None, typer.Option(help="Census-area id column.")] = None,
    group_field: Annotated[str | None, typer.Option(help="Grouping column, e.g. former municipality.")] = None,
    id_field: Annotated[str | None, typer.Option(help="Branch id column; detected when omitted.")] = None,
    crs: Annotated[str | None, typer.Option(help="Metric CRS, e.g. EPSG:27700; local UTM when omitted.")] = None,
    speeds: Annotated[Path | None, typer.Option(help="YAML/TOML speeds and turn costs (geodata.speeds)")] = None,
    settlements: Annotated[
        Path | None, typer.Option(help="Named places (CSV lon/lat or points): stop communities.")
    ] = None,
    age_shares: Annotated[
        str | None, typer.Option(help="Default shares 0-17,18-64,65+ where only totals are known, e.g. 0.2,0.6,0.2.")
    ] = None,
) -> None:
    """Build a region from raw files into the data directory (BRANCHNET_DATA_DIR)."""
    from geodata.region import RegionSources, prepare_region
    from service.store.regions import check_name, save_region

    config = settings()
    # absolute paths: the nightly batch re-reads the files from wherever it runs
    sources = RegionSources(
        osm=str(osm.resolve()),
        population=str(population.resolve()),
        branches=str(branches.resolve()),
        population_table=str(population_table.resolve()) if population_table else None,
        join_on=join_on,
        population_field=population_field,
        area_field=area_field,
        group_field=group_field,
        id_field=id_field,
        crs=crs,
        speeds=str(speeds.resolve()) if speeds else None,
        settlements=str(settlements.resolve()) if settlements else None,
        age_shares=_parse_shares(age_shares),
    )
    with user_errors():
        check_name(name)
        with progress_bar() as report:
            region = prepare_region(name, sources, cache_dir=config.cache_dir, progress=report)
            report("save region", 0.0)
            folder = save_region(region, config.regions_dir)
            report("save region", 1.0)
        print_region(region.meta)
        console.print(f"region [bold]{name}[/] saved to {folder}")


def _parse_shares(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        a, b, c = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--age-shares {text!r}: give three numbers, e.g. 0.2,0.6,0.2") from None
    return (a, b, c)


def print_region(meta: dict[str, Any]) -> None:
    drive = meta["networks"]["drive"]
    console.print(
        f"[bold]{meta['name']}[/]: {meta['population']:,.0f} people on {meta['demand_points']:,} demand points, "
        f"{meta['branches']} branches; drive graph {drive['nodes']:,} nodes / {drive['edges']:,} edges "
        f"({drive['dropped_nodes']:,} nodes outside the largest strongly connected component dropped), "
        f"CRS {meta['crs']}"
    )
    for note in meta.get("notes", []):
        console.print(f"  note: {note}", highlight=False)


@region_app.command("show")
def region_show(
    name: Annotated[str, typer.Argument(help="Region name.")],
    by: Annotated[str, typer.Option(help="Break down by 'area', 'group' or 'none'.")] = "area",
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Print the current network's access KPIs, overall and per census area or former municipality."""
    import numpy as np

    from service.plans.report import region_kpis
    from service.store.regions import load_region

    config = settings()
    with user_errors():
        region = load_region(name, config.regions_dir)
        kpis = region_kpis(region, np.ones(len(region.branches), dtype=bool))
        if as_json:
            print_json({"region": region.meta, "kpis": kpis})
            return
        print_region(region.meta)
        console.print(kpi_table(kpis, "Current network: access by car to the nearest branch"))
        key = {"area": "by_area", "group": "by_group"}.get(by)
        if key == "by_group" and key not in kpis:
            key = "by_area"
        if key:
            console.print(kpi_table(kpis, f"... by {by}", by=key))


@region_app.command("list")
def region_list(as_json: Annotated[bool, JsonOption] = False) -> None:
    """List imported regions."""
    from service.store.regions import list_regions

    names = list_regions(settings().regions_dir)
    if as_json:
        print_json({"regions": names})
        return
    for name in names:
        console.print(name)
