"""`mediawatch archive export`: the archived bytes as a standard WARC file."""
from __future__ import annotations

from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import click
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from basis.errors import UsageError
from crawler.cli.context import Context, pass_ctx, since_arg
from storage import archive as stored
from storage.models import Capture

# the body is kept as the HTTP client handed it over (chunks joined, a gzip it undid no
# longer named in Content-Encoding): the headers that described the wire form are restated
WIRE_HEADERS = {"content-length", "transfer-encoding"}


@click.group()
def archive() -> None:
    """The bytes read for each stored article."""


@archive.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.warc.gz")
@click.option("--since", help="Only responses fetched within this duration (7d).")
@pass_ctx
def archive_export(ctx: Context, path: Path, since: str | None) -> None:
    """Write the archived responses to FILE.warc.gz: one WARC response record each (status
    line, headers, exact body), dated when it was fetched."""
    after = since_arg(since)
    count = 0
    with ctx.reader() as session, _created(path) as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {
            "software": "mediawatch", "format": "WARC File Format 1.0"}))
        for capture in stored.captures_since(session, after):
            writer.write_record(response_record(writer, capture))
            count += 1
    ctx.console.print(f"{count} responses written to {path}")


def response_record(writer: WARCWriter, capture: Capture) -> object:
    body = stored.unpack(capture)
    headers = [(name, value) for name, value in capture.headers
               if name.lower() not in WIRE_HEADERS] + [("Content-Length", str(len(body)))]
    status = f"{capture.status} {_phrase(capture.status)}".strip()
    return writer.create_warc_record(
        capture.url, "response", payload=BytesIO(body), length=len(body),
        warc_headers_dict={"WARC-Date": datetime_to_iso_date(capture.fetched_at)},
        http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"))


def _created(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
