"""Emulator behaviour over HTTP: file-handle copies, the MD5 query, the entity download redirects,
URL handles' free-form MD5 and preview generation (synapse-api-2.md §6.1-§6.3; SRS
PreviewManagerImpl / TextPreviewGenerator)."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
import requests
from emulator_core_support import grant, uniq, user_id
from test_emulator_storage_support import (
    download,
    error_reason,
    file_entity,
    md5_hex,
    put_parts,
    start_upload,
    upload,
)

from synapse_declare.emulator import Emulator

MODEL = "org.sagebionetworks.repo.model."
S3_FILE_HANDLE = MODEL + "file.S3FileHandle"
EXTERNAL_FILE_HANDLE = MODEL + "file.ExternalFileHandle"


def _assoc(handle: str, entity: str) -> dict[str, Any]:
    return {
        "fileHandleId": handle,
        "associateObjectId": entity,
        "associateObjectType": "FileEntity",
    }


def _upload_with_preview(api: Any, data: bytes, name: str, content_type: str) -> dict[str, Any]:
    status = start_upload(api, data, name, content_type=content_type, generate_preview=True)
    put_parts(api, status["uploadId"], data, 5 * 1024 * 1024)
    done = api.ok("PUT", f"/file/v1/file/multipart/{status['uploadId']}/complete")
    return dict(api.ok("GET", f"/file/v1/fileHandle/{done['resultFileHandleId']}"))


# ---------------------------------------------------------------------------------------------
# POST /file/v1/filehandles/copy (§6.1)


def test_copy_makes_metadata_only_handles_in_request_order(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    first = upload(alice, b"first file", "one.txt", content_type="text/plain")
    second = upload(alice, b"second file", "two.csv", content_type="text/csv")
    one = file_entity(alice, project["id"], first["id"])
    two = file_entity(alice, project["id"], second["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "DOWNLOAD"])])
    answer = bob.ok(
        "POST",
        "/file/v1/filehandles/copy",
        {
            "copyRequests": [
                {"originalFile": _assoc(second["id"], two["id"]), "newFileName": "renamed.csv"},
                {"originalFile": _assoc(first["id"], one["id"]), "newContentType": "text/x-c"},
            ]
        },
    )
    results = answer["copyResults"]
    assert [r["originalFileHandleId"] for r in results] == [second["id"], first["id"]]
    renamed, retyped = results[0]["newFileHandle"], results[1]["newFileHandle"]
    assert renamed["fileName"] == "renamed.csv" and renamed["contentType"] == "text/csv"
    assert retyped["fileName"] == "one.txt" and retyped["contentType"] == "text/x-c"
    for copy, original in ((renamed, second), (retyped, first)):
        assert copy["id"] not in (first["id"], second["id"])
        assert copy["etag"] != original["etag"]
        assert copy["createdBy"] == str(user_id(emu, "bob"))
        assert copy["concreteType"] == S3_FILE_HANDLE
        for same in ("bucketName", "key", "contentMd5", "contentSize", "storageLocationId"):
            assert copy[same] == original[same]
        assert "previewId" not in copy
    # The copy is the caller's own handle (creator-only reads succeed).
    assert bob.ok("GET", f"/file/v1/fileHandle/{renamed['id']}") == renamed


def test_copy_failures_are_per_item_and_request_errors_are_400(
    emu: Emulator, alice: Any, bob: Any, anon: Any, project: dict[str, Any]
) -> None:
    handle = upload(alice, b"private", "p.txt", content_type="text/plain")
    entity = file_entity(alice, project["id"], handle["id"])
    other = upload(alice, b"not attached", "q.txt", content_type="text/plain")
    results = alice.ok(
        "POST",
        "/file/v1/filehandles/copy",
        {
            "copyRequests": [
                {"originalFile": _assoc(other["id"], entity["id"])},
                {"originalFile": _assoc(handle["id"], entity["id"])},
            ]
        },
    )["copyResults"]
    assert results[0] == {"originalFileHandleId": other["id"], "failureCode": "UNAUTHORIZED"}
    assert "newFileHandle" in results[1]
    denied = bob.ok(
        "POST",
        "/file/v1/filehandles/copy",
        {"copyRequests": [{"originalFile": _assoc(handle["id"], entity["id"])}]},
    )["copyResults"]
    assert denied == [{"originalFileHandleId": handle["id"], "failureCode": "UNAUTHORIZED"}]
    with emu.store.transaction():
        emu.store.execute("DELETE FROM file_handles WHERE id = ?", (int(handle["id"]),))
    gone = alice.ok(
        "POST",
        "/file/v1/filehandles/copy",
        {"copyRequests": [{"originalFile": _assoc(handle["id"], entity["id"])}]},
    )["copyResults"]
    assert gone == [{"originalFileHandleId": handle["id"], "failureCode": "NOT_FOUND"}]
    assert alice.error(400, "POST", "/file/v1/filehandles/copy", {}) == (
        "BatchFileHandleCopyRequest.copyRequests is required."
    )
    twice = {"originalFile": _assoc(other["id"], entity["id"])}
    assert alice.error(
        400, "POST", "/file/v1/filehandles/copy", {"copyRequests": [twice, twice]}
    ) == ("Request contains duplicated FileHandleId.")
    many = [{"originalFile": _assoc(str(i), entity["id"])} for i in range(101)]
    assert alice.error(400, "POST", "/file/v1/filehandles/copy", {"copyRequests": many}) == (
        "Request exceeds the maximum number of objects per request: 100"
    )
    assert anon.error(403, "POST", "/file/v1/filehandles/copy", {"copyRequests": []}) == (
        "Anonymous cannot copy files."
    )


@pytest.fixture
def anon(emu: Emulator, api_for: Any) -> Any:
    return api_for(emu, None)


# ---------------------------------------------------------------------------------------------
# GET /entity/md5/{md5} (§6.2)


def test_md5_lists_every_matching_readable_version(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    content = f"md5 probe {uniq()}".encode()
    digest = md5_hex(content)
    assert alice.ok("GET", f"/entity/md5/{digest}") == {"results": [], "totalNumberOfResults": 0}
    first = upload(alice, content, "a.txt", content_type="text/plain")
    entity = file_entity(alice, project["id"], first["id"], "a.txt")
    changed = upload(alice, b"other bytes", "a.txt", content_type="text/plain")
    alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": changed["id"]})
    again = upload(alice, content, "a.txt", content_type="text/plain")
    current = alice.ok("GET", f"/entity/{entity['id']}")
    alice.ok("PUT", f"/entity/{entity['id']}", {**current, "dataFileHandleId": again["id"]})
    twin = file_entity(alice, project["id"], again["id"], "b.txt")
    found = alice.ok("GET", f"/entity/md5/{digest}")
    pairs = [(h["id"], h["versionNumber"]) for h in found["results"]]
    assert pairs == [(entity["id"], 1), (entity["id"], 3), (twin["id"], 1)]
    assert found["totalNumberOfResults"] == 3
    header = found["results"][0]
    assert header["name"] == "a.txt" and header["isLatestVersion"] is False
    assert header["type"] == MODEL + "FileEntity" and header["versionLabel"] == "1"
    assert bob.ok("GET", f"/entity/md5/{digest}") == {"results": [], "totalNumberOfResults": 0}
    grant(alice, twin["id"], [(user_id(emu, "bob"), ["READ"])])
    assert [h["id"] for h in bob.ok("GET", f"/entity/md5/{digest}")["results"]] == [twin["id"]]
    alice.ok("DELETE", f"/entity/{twin['id']}")
    assert [h["id"] for h in alice.ok("GET", f"/entity/md5/{digest}")["results"]] == [
        entity["id"],
        entity["id"],
    ]


# ---------------------------------------------------------------------------------------------
# GET /entity/{id}/file, /version/{n}/file, /filepreview (§6.3)


def test_entity_file_redirects(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    v1 = upload(alice, b"version one", "v.txt", content_type="text/plain")
    entity = file_entity(alice, project["id"], v1["id"], "v.txt")
    v2 = upload(alice, b"version two", "v.txt", content_type="text/plain")
    alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": v2["id"]})
    redirect = alice.session.get(
        f"{emu.repo_endpoint}/entity/{entity['id']}/file", allow_redirects=False, timeout=30
    )
    assert redirect.status_code == 307 and redirect.content == b""
    assert download(redirect.headers["Location"]) == b"version two"
    text = alice.session.get(
        f"{emu.repo_endpoint}/entity/{entity['id']}/version/1/file",
        params={"redirect": "false"},
        timeout=30,
    )
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert download(text.text) == b"version one"
    assert alice.error(404, "GET", f"/entity/{entity['id']}/version/9/file") == (
        f"Cannot find a node with id {entity['id']} and version 9"
    )
    # generatePreview false makes a handle its own preview.
    own = alice.call("GET", f"/entity/{entity['id']}/filepreview", redirect="false")
    assert download(own.text) == b"version two"
    binary = _upload_with_preview(alice, b"\x00\x01", "b.bin", "application/octet-stream")
    no_preview = file_entity(alice, project["id"], binary["id"], "b.bin")
    assert alice.error(404, "GET", f"/entity/{no_preview['id']}/filepreview") == (
        f"A preview does not exist for file {binary['id']}"
    )
    assert alice.error(404, "GET", f"/entity/{project['id']}/file") == (
        f"Object {project['id']} does not have a file handle associated with it."
    )
    assert bob.error(403, "GET", f"/entity/{entity['id']}/file") == (
        "You lack DOWNLOAD access to the requested entity."
    )


# ---------------------------------------------------------------------------------------------
# URL handles keep any contentMd5


def test_url_handle_accepts_a_free_form_md5(alice: Any, make_emulator: Any, api_for: Any) -> None:
    body = {
        "concreteType": EXTERNAL_FILE_HANDLE,
        "externalURL": "https://example.org/data/file.bin",
        "fileName": "file.bin",
        "contentMd5": "not-a-hex-digest",
        "contentSize": 12,
    }
    handle = alice.ok("POST", "/file/v1/externalFileHandle", body)
    assert handle["contentMd5"] == "not-a-hex-digest"
    assert handle["externalURL"] == body["externalURL"]
    # S3 handles still require 32 hex digits (synapse-api.md §9.3).
    unlogged = api_for(make_emulator(request_log=None), "alice")
    response = unlogged.call(
        "POST",
        "/file/v1/externalFileHandle/s3",
        {
            "concreteType": S3_FILE_HANDLE,
            "bucketName": "b",
            "key": "k",
            "storageLocationId": 1,
            "contentMd5": "not-a-hex-digest",
        },
    )
    assert error_reason(response, 400) == (
        "The content MD5 digest must be a valid hexadecimal string of length 32."
    )


# ---------------------------------------------------------------------------------------------
# Previews


def test_text_uploads_get_a_text_preview(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    long_text = ("é" * 1600).encode("utf-8")
    handle = _upload_with_preview(alice, long_text, "notes.txt", "text/plain; charset=UTF-8")
    preview = alice.ok("GET", f"/file/v1/fileHandle/{handle['previewId']}")
    assert preview["isPreview"] is True and preview["fileName"] == "preview.txt"
    assert preview["contentType"] == "text/plain" and preview["createdBy"] == handle["createdBy"]
    assert preview["bucketName"] == handle["bucketName"]
    assert preview["key"].startswith(handle["createdBy"] + "/")
    entity = file_entity(alice, project["id"], handle["id"], "notes.txt")
    url = alice.session.get(
        f"{emu.repo_endpoint}/entity/{entity['id']}/filepreview",
        params={"redirect": "false"},
        timeout=30,
    ).text
    assert download(url).decode("utf-8") == "é" * 1497 + "..."
    listed = alice.ok("GET", f"/entity/{entity['id']}/filehandles")["list"]
    assert [h["id"] for h in listed] == [handle["id"], preview["id"]]
    short = _upload_with_preview(alice, gzip.compress(b"hello world\n"), "a.txt.gz", "text/plain")
    assert short["previewId"] != short["id"]


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n"),
        ("text/csv", b"\n \n"),
        ("application/octet-stream", b"\x00\x01"),
        ("application/json", b"{}"),
    ],
)
def test_no_preview_without_a_text_generator(alice: Any, content_type: str, data: bytes) -> None:
    handle = _upload_with_preview(alice, data, "f.bin", content_type)
    assert "previewId" not in handle


@pytest.mark.parametrize(
    ("content_type", "data", "expected"),
    [
        ("text/csv", b'name,"x, y"\n1,2\n', "name,x&#44; y\n1,2"),
        ("text/tab-separated-values; charset=UTF-8", b"a\tb\n1\t2\n", "a,b\n1,2"),
        ("text/csv", ("x" * 45 + ",b\n").encode(), "x" * 40 + "&hellip;,b"),
        (
            "text/csv",
            ",".join(str(i) for i in range(25)).encode() + b"\nnext,row\n",
            ",".join(str(i) for i in range(20)) + ",&hellip;\nnext,row",
        ),
        (
            "text/csv",
            b"".join(f"{i},{i}\n".encode() for i in range(40)),
            "".join(f"{i},{i}\n" for i in range(30)) + "&hellip;,&hellip;",
        ),
    ],
)
def test_tables_get_a_csv_preview(
    alice: Any, content_type: str, data: bytes, expected: str
) -> None:
    """TabCsvPreviewGenerator: 30 rows, 20 cells, 40 characters, cuts marked with &hellip;."""
    handle = _upload_with_preview(alice, data, "table.csv", content_type)
    preview = alice.ok("GET", f"/file/v1/fileHandle/{handle['previewId']}")
    assert preview["fileName"] == "preview.csv" and preview["contentType"] == "text/csv"
    assert preview["isPreview"] is True
    s3 = alice.emulator.s3_client()
    body = s3.get_object(Bucket=preview["bucketName"], Key=preview["key"])["Body"].read()
    assert body.decode("utf-8") == expected


def test_wiki_attachment_preview_is_served(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    attachment = _upload_with_preview(alice, b"attachment text\n", "notes.txt", "text/plain")
    markdown = upload(alice, gzip.compress(b"# Page"), "index.md.gz", content_type="text/plain")
    page = alice.ok(
        "POST",
        f"/entity/{project['id']}/wiki2",
        {
            "title": "Root",
            "markdownFileHandleId": markdown["id"],
            "attachmentFileHandleIds": [attachment["id"]],
        },
    )
    url = requests.get(
        f"{emu.repo_endpoint}/entity/{project['id']}/wiki2/{page['id']}/attachmentpreview",
        params={"fileName": "notes.txt", "redirect": "false"},
        headers={"Authorization": f"Bearer {emu.users['alice']}"},
        timeout=30,
    ).text
    served = requests.get(url, timeout=30)
    assert served.content == b"attachment text\n"
    assert served.headers["Content-Disposition"] == "attachment; filename=preview.txt"
    handles = alice.ok("GET", f"/entity/{project['id']}/wiki2/{page['id']}/attachmenthandles")
    assert [h["fileName"] for h in handles["list"]] == ["notes.txt", "preview.txt"]
