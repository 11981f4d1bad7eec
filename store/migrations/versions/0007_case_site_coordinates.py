"""Expand: the site's coordinates on the case row, so the duplicate check reads only the cases near a site.

ix_cases_site (cell, status, latitude) takes over what ix_cases_site_cell served, and the customer and
address indexes gain the status, so that the open cases of a customer, a site or an address are an index
search on every dialect (SQLite's planner, without statistics, took the status index and read every open
case); the indexes they replace go. Existing rows get their coordinates from their stored application here.
Older code neither writes nor reads the new columns, so it keeps running beside this revision: a case it
writes has a cell and no coordinates, which the newer duplicate check reads as it did before
(workflow/findings.py), until the case's next event.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
PHASE = "expand"

_BATCH = 1000
_INDEXES = {
    "ix_cases_customer_status": ["customer_no", "status"],
    "ix_cases_site": ["site_cell", "status", "site_lat"],
    "ix_cases_address_status": ["address_key", "status"],
}
_REPLACED = ("ix_cases_customer", "ix_cases_site_cell", "ix_cases_address_key")


def upgrade() -> None:
    op.add_column(
        "cases", sa.Column("site_lat", sa.Double(), nullable=True, comment="site latitude (WGS84 degrees)")
    )
    op.add_column(
        "cases", sa.Column("site_lon", sa.Double(), nullable=True, comment="site longitude (WGS84 degrees)")
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "cases", columns, unique=False)
    for name in _REPLACED:
        op.drop_index(name, table_name="cases")
    _fill_coordinates()


def _fill_coordinates() -> None:
    cases = sa.table(
        "cases",
        sa.column("application_no", sa.String()),
        sa.column("application", sa.JSON()),
        sa.column("site_cell", sa.BigInteger()),
        sa.column("site_lat", sa.Double()),
        sa.column("site_lon", sa.Double()),
    )
    conn = op.get_bind()
    update = (
        cases.update()
        .where(cases.c.application_no == sa.bindparam("key"))
        .values(site_lat=sa.bindparam("lat"), site_lon=sa.bindparam("lon"))
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(cases.c.application_no, cases.c.application)
            .where(cases.c.site_cell.is_not(None), cases.c.application_no > after)
            .order_by(cases.c.application_no)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        located = [
            {"key": row.application_no, "lat": site["lat"], "lon": site["lon"]}
            for row in rows
            if (site := row.application.get("site_location"))
        ]
        if located:
            conn.execute(update, located)
        after = rows[-1].application_no
