"""Typed Synapse REST calls: one method per endpoint the reconciler uses; pagination followed."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..redact import register_secret
from .http import Transport

PROJECT = "org.sagebionetworks.repo.model.Project"
FOLDER = "org.sagebionetworks.repo.model.Folder"
UPLOAD_SETTING = "org.sagebionetworks.repo.model.project.UploadDestinationListSetting"
ALL_ENTITY_TYPES = [
    "project",
    "folder",
    "file",
    "table",
    "link",
    "entityview",
    "dockerrepo",
    "submissionview",
    "dataset",
    "datasetcollection",
    "materializedview",
    "virtualtable",
]


class SynapseAPI:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    # -- users and principals ------------------------------------------------------------

    def my_profile(self) -> dict[str, Any]:
        return dict(self.t.request("GET", "/userProfile"))

    def headers_by_alias(self, names: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(names), 100):
            chunk = names[start : start + 100]
            body = self.t.request("POST", "/userGroupHeaders/aliases", body={"list": chunk})
            found.extend(body.get("list", []))
        return found

    def is_certified(self) -> bool:
        """Whether the caller passed Synapse's certification quiz (user bundle, mask 0x8)."""
        body = self.t.request("GET", "/user/bundle", params={"mask": 8})
        return bool(body.get("isCertified")) if isinstance(body, dict) else False

    def headers_by_prefix(
        self, prefix: str, *, users: bool, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Users (or teams) whose name or a word of it starts with ``prefix``: one page."""
        body = self.t.request(
            "GET",
            "/userGroupHeaders",
            params={
                "prefix": prefix,
                "typeFilter": "USERS_ONLY" if users else "TEAMS_ONLY",
                "offset": 0,
                "limit": limit,
            },
        )
        return list(body.get("children", [])) if isinstance(body, dict) else []

    def my_team_ids(self, user_id: int) -> list[int]:
        """Ids of the teams the user belongs to (offset paging)."""
        return [int(team["id"]) for team in self._offset_pages(f"/user/{user_id}/team")]

    def _offset_pages(self, path: str, page: int = 50) -> list[dict[str, Any]]:
        """Every ``results`` item of an offset-paged GET, reading pages until a short one (some
        of these endpoints report the page size as their total, so the total cannot be used)."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self.t.request("GET", path, params={"offset": offset, "limit": page})
            results = list(body.get("results", [])) if isinstance(body, dict) else []
            found.extend(results)
            if len(results) < page:
                return found
            offset += page

    def group_headers_by_ids(self, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        body = self.t.request(
            "GET", "/userGroupHeaders/batch", params={"ids": ",".join(str(i) for i in ids)}
        )
        return list(body.get("children", []))

    # -- entities --------------------------------------------------------------------------

    def lookup_child(self, parent_id: str | None, name: str) -> str | None:
        try:
            body = self.t.request(
                "POST", "/entity/child", body={"parentId": parent_id, "entityName": name}
            )
        except NotFound:
            return None
        return str(body["id"])

    def children(self, parent_id: str, types: list[str] | None = None) -> list[dict[str, Any]]:
        """Every child header of ``parent_id`` (all pages); all entity types by default."""
        page_token: str | None = None
        headers: list[dict[str, Any]] = []
        while True:
            body = self.t.request(
                "POST",
                "/entity/children",
                body={
                    "parentId": parent_id,
                    "includeTypes": types or ALL_ENTITY_TYPES,
                    "sortBy": "NAME",
                    "sortDirection": "ASC",
                    "nextPageToken": page_token,
                },
            )
            headers.extend(body.get("page", []))
            page_token = body.get("nextPageToken")
            if not page_token:
                return headers

    def children_census(self, parent_id: str) -> tuple[list[dict[str, Any]], int]:
        """The folder and file children of ``parent_id`` (all pages) and the sum of its files'
        sizes, which Synapse adds to the first page at no extra call."""
        page_token: str | None = None
        headers: list[dict[str, Any]] = []
        total = 0
        while True:
            body = self.t.request(
                "POST",
                "/entity/children",
                body={
                    "parentId": parent_id,
                    "includeTypes": ["folder", "file"],
                    "includeSumFileSizes": page_token is None,
                    "sortBy": "NAME",
                    "sortDirection": "ASC",
                    "nextPageToken": page_token,
                },
            )
            headers.extend(body.get("page", []))
            total += int(body.get("sumFileSizesBytes") or 0)
            page_token = body.get("nextPageToken")
            if not page_token:
                return headers, total

    def trash_entity(self, entity_id: str) -> None:
        """Move an entity (and its subtree) to the caller's trash: restorable for 30 days."""
        self.t.request("PUT", f"/trashcan/trash/{entity_id}")

    def trash_view(self, *, page: int = 100) -> list[dict[str, Any]]:
        """Every TrashedEntity the caller deleted (offset paging, stops on a short page)."""
        return self._offset_pages("/trashcan/view", page)

    def restore_from_trash(self, entity_id: str) -> None:
        """Back to its original parent and name (``PUT /trashcan/restore/{id}``)."""
        self.t.request("PUT", f"/trashcan/restore/{entity_id}")

    def bundle(self, entity_id: str, **flags: bool) -> dict[str, Any]:
        return dict(self.t.request("POST", f"/entity/{entity_id}/bundle2", body=flags))

    def create_bundle(
        self,
        entity: dict[str, Any],
        annotations: dict[str, Any] | None,
        resource_access: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        """Entity, annotations and ACL in one call (one transaction on the server)."""
        body: dict[str, Any] = {"entity": entity}
        if annotations is not None:
            body["annotations"] = {"annotations": annotations}
        if resource_access is not None:
            body["accessControlList"] = {"resourceAccess": resource_access}
        return dict(self.t.request("POST", "/entity/bundle2/create", body=body))

    def get_entity(self, entity_id: str) -> dict[str, Any]:
        return dict(self.t.request("GET", f"/entity/{entity_id}"))

    def update_entity(self, entity: dict[str, Any]) -> dict[str, Any]:
        return dict(self.t.request("PUT", f"/entity/{entity['id']}", body=entity))

    def get_annotations(self, entity_id: str) -> dict[str, Any]:
        return dict(self.t.request("GET", f"/entity/{entity_id}/annotations2"))

    def put_annotations(
        self, entity_id: str, etag: str, annotations: dict[str, Any]
    ) -> dict[str, Any]:
        return dict(
            self.t.request(
                "PUT",
                f"/entity/{entity_id}/annotations2",
                body={"id": entity_id, "etag": etag, "annotations": annotations},
            )
        )

    # -- ACLs ------------------------------------------------------------------------------

    def get_acl(self, entity_id: str) -> dict[str, Any] | None:
        """The entity's own ACL, or None when it inherits."""
        try:
            return dict(self.t.request("GET", f"/entity/{entity_id}/acl"))
        except NotFound as err:
            if "inherits its permissions" in err.reason:
                return None
            raise

    def create_acl(self, entity_id: str, resource_access: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(
            self.t.request(
                "POST",
                f"/entity/{entity_id}/acl",
                body={"id": entity_id, "resourceAccess": resource_access},
            )
        )

    def update_acl(
        self, entity_id: str, etag: str, resource_access: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return dict(
            self.t.request(
                "PUT",
                f"/entity/{entity_id}/acl",
                body={"id": entity_id, "etag": etag, "resourceAccess": resource_access},
            )
        )

    def delete_acl(self, entity_id: str) -> None:
        self.t.request("DELETE", f"/entity/{entity_id}/acl")

    # -- storage locations, upload destinations, STS ---------------------------------------

    def my_storage_locations(self) -> list[dict[str, Any]]:
        """The caller's storage locations (Synapse returns the newest 100)."""
        body = self.t.request("GET", "/storageLocation")
        return list(body.get("list", [])) if isinstance(body, dict) else []

    def create_storage_location(self, setting: dict[str, Any]) -> dict[str, Any]:
        """Idempotent per user on Synapse: identical settings return the existing location."""
        return dict(self.t.request("POST", "/storageLocation", body=setting))

    def upload_setting(self, container_id: str) -> dict[str, Any] | None:
        """The container's own upload-destination setting; None when it has none (Synapse
        answers 200 with an empty body)."""
        body = self.t.request("GET", f"/projectSettings/{container_id}/type/upload")
        return dict(body) if isinstance(body, dict) and body else None

    def create_upload_setting(self, container_id: str, locations: list[int]) -> dict[str, Any]:
        return dict(
            self.t.request(
                "POST",
                "/projectSettings",
                body={
                    "concreteType": UPLOAD_SETTING,
                    "settingsType": "upload",
                    "projectId": container_id,
                    "locations": locations,
                },
            )
        )

    def update_upload_setting(self, setting: dict[str, Any]) -> None:
        """PUT answers 200 with an empty body; a stale etag is 412."""
        self.t.request("PUT", "/projectSettings", body=setting)

    def upload_destination(self, entity_id: str) -> dict[str, Any]:
        return dict(self.t.request("GET", f"/entity/{entity_id}/uploadDestination", service="file"))

    def sts_credentials(self, entity_id: str, permission: str) -> dict[str, Any]:
        """Temporary AWS credentials for an STS-enabled folder; registered for redaction."""
        body = dict(
            self.t.request("GET", f"/entity/{entity_id}/sts", params={"permission": permission})
        )
        for key in ("accessKeyId", "secretAccessKey", "sessionToken"):
            register_secret(body.get(key))
        return body

    # -- wikis (v1: markdown inline) -------------------------------------------------------

    def wiki_headers(self, owner_id: str) -> list[dict[str, Any]]:
        """Every wiki page of the owner; empty when it has no root page (Synapse: 404)."""
        headers: list[dict[str, Any]] = []
        offset = 0
        while True:
            try:
                body = self.t.request(
                    "GET",
                    f"/entity/{owner_id}/wikiheadertree",
                    params={"offset": offset, "limit": 50},
                )
            except NotFound as err:
                if "root wiki does not exist" in err.reason:
                    return headers
                raise
            page = body.get("results", [])
            headers.extend(page)
            if len(page) < 50:
                return headers
            offset += 50

    def wiki_order_hint(self, owner_id: str) -> dict[str, Any]:
        """The owner's V2WikiOrderHint: ``idList`` orders sibling pages; guarded by ``etag``."""
        return dict(self.t.request("GET", f"/entity/{owner_id}/wiki2orderhint"))

    def put_wiki_order_hint(self, owner_id: str, hint: dict[str, Any]) -> dict[str, Any]:
        return dict(self.t.request("PUT", f"/entity/{owner_id}/wiki2orderhint", body=hint))

    def wiki_attachment_names(self, owner_id: str, wiki_id: str) -> list[str]:
        """The file names of a wiki page's attachments."""
        body = self.t.request("GET", f"/entity/{owner_id}/wiki/{wiki_id}/attachmenthandles")
        return [str(h.get("fileName")) for h in body.get("list", [])]

    def get_wiki(self, owner_id: str, wiki_id: str) -> dict[str, Any]:
        return dict(self.t.request("GET", f"/entity/{owner_id}/wiki/{wiki_id}"))

    def create_wiki(
        self, owner_id: str, title: str, markdown: str, parent_wiki_id: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"title": title, "markdown": markdown}
        if parent_wiki_id is not None:
            body["parentWikiId"] = parent_wiki_id
        return dict(self.t.request("POST", f"/entity/{owner_id}/wiki", body=body))

    def update_wiki(self, owner_id: str, page: dict[str, Any]) -> dict[str, Any]:
        return dict(self.t.request("PUT", f"/entity/{owner_id}/wiki/{page['id']}", body=page))

    # -- storage / migration -------------------------------------------------------------------
    # Used by ``migration.py``. The multipart calls are writes for the transport (an unknown
    # outcome raises AmbiguousWrite); the migration engine decides which of them are safe to send
    # again (start: Synapse's request hash returns the same upload; presigned URL batch: changes
    # nothing; add part: records the same part again; complete: answers the same status).

    def children_of_types(self, parent_id: str, types: list[str]) -> list[dict[str, Any]]:
        """Every child header of ``parent_id`` of the given entity types (all pages)."""
        return self.children(parent_id, types)

    def version_bundle(self, entity_id: str, version: int, **flags: bool) -> dict[str, Any]:
        return dict(
            self.t.request("POST", f"/entity/{entity_id}/version/{version}/bundle2", body=flags)
        )

    def entity_versions(self, entity_id: str, *, page: int = 50) -> list[dict[str, Any]]:
        """Every VersionInfo of an entity, newest first (offset paging, stops on a short page)."""
        return self._offset_pages(f"/entity/{entity_id}/version", page)

    def get_storage_location(self, location_id: int) -> dict[str, Any]:
        return dict(self.t.request("GET", f"/storageLocation/{location_id}"))

    def get_file_handle(self, handle_id: str) -> dict[str, Any]:
        """Only the handle's creator may read it this way (403 otherwise)."""
        return dict(self.t.request("GET", f"/fileHandle/{handle_id}", service="file"))

    def file_handle_batch(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """POST /fileHandle/batch (≤ 100 associations): handles and/or presigned download URLs,
        one result per request (``failureCode`` when refused). The URLs are secrets: callers
        never log them."""
        answer = self.t.request("POST", "/fileHandle/batch", body=body, service="file")
        return list(answer.get("requestedFiles", [])) if isinstance(answer, dict) else []

    def create_external_s3_handle(self, handle: dict[str, Any]) -> dict[str, Any]:
        """POST /externalFileHandle/s3: register an object in an external S3 location the caller
        created (Synapse HEADs it; the MD5 is taken as given)."""
        return dict(self.t.request("POST", "/externalFileHandle/s3", body=handle, service="file"))

    def start_multipart(self, request: dict[str, Any], *, force_restart: bool) -> dict[str, Any]:
        """POST /file/multipart (upload or copy request) → MultipartUploadStatus."""
        return dict(
            self.t.request(
                "POST",
                "/file/multipart",
                body=request,
                params={"forceRestart": "true" if force_restart else "false"},
                service="file",
            )
        )

    def presigned_part_urls(self, upload_id: str, part_numbers: list[int]) -> list[dict[str, Any]]:
        body = self.t.request(
            "POST",
            f"/file/multipart/{upload_id}/presigned/url/batch",
            body={"uploadId": upload_id, "partNumbers": part_numbers},
            service="file",
        )
        return list(body.get("partPresignedUrls", []))

    def add_part(self, upload_id: str, part_number: int, part_md5_hex: str) -> dict[str, Any]:
        return dict(
            self.t.request(
                "PUT",
                f"/file/multipart/{upload_id}/add/{part_number}",
                params={"partMD5Hex": part_md5_hex},
                service="file",
            )
        )

    def complete_multipart(self, upload_id: str) -> dict[str, Any]:
        return dict(self.t.request("PUT", f"/file/multipart/{upload_id}/complete", service="file"))

    def update_version_file_handle(
        self, entity_id: str, version: int, old_handle_id: str, new_handle_id: str
    ) -> None:
        """Repoint one version in place; 412 when the version no longer has ``old_handle_id``."""
        self.t.request(
            "PUT",
            f"/entity/{entity_id}/version/{version}/filehandle",
            body={"oldFileHandleId": old_handle_id, "newFileHandleId": new_handle_id},
        )

    def update_entity_new_version(self, entity: dict[str, Any]) -> dict[str, Any]:
        """PUT /entity/{id}?newVersion=true (etag-guarded: 412 when the entity changed)."""
        return dict(
            self.t.request(
                "PUT", f"/entity/{entity['id']}", body=entity, params={"newVersion": "true"}
            )
        )

    # -- effective access (read-only) ------------------------------------------------------

    def entity_path(self, entity_id: str) -> list[dict[str, Any]]:
        """The entity's ancestors and itself, root first (``GET /entity/{id}/path``)."""
        body = self.t.request("GET", f"/entity/{entity_id}/path")
        return list(body.get("path", [])) if isinstance(body, dict) else []

    def benefactor(self, entity_id: str) -> dict[str, Any]:
        """The header of the entity whose ACL governs ``entity_id``."""
        return dict(self.t.request("GET", f"/entity/{entity_id}/benefactor"))

    def team_member_ids(self, team_id: int) -> list[dict[str, Any]]:
        """Every member's UserGroupHeader (``GET /teamMembers/{id}``, offset paging by 50)."""
        return [dict(m["member"]) for m in self._offset_pages(f"/teamMembers/{team_id}")]

    def teams_by_fragment(self, fragment: str) -> list[dict[str, Any]]:
        """Teams whose name (or a word of it) starts with ``fragment``: one page of 50."""
        body = self.t.request(
            "GET", "/teams", params={"fragment": fragment, "offset": 0, "limit": 50}
        )
        return list(body.get("results", [])) if isinstance(body, dict) else []

    def user_is_certified(self, user_id: int) -> bool:
        """Whether a user passed the certification quiz (their bundle, mask 0x8)."""
        body = self.t.request("GET", f"/user/{user_id}/bundle", params={"mask": 8})
        return bool(body.get("isCertified")) if isinstance(body, dict) else False

    def access_requirement_status(self, requirement_id: int) -> dict[str, Any]:
        """The caller's own status for a requirement (``isApproved``); Synapse answers only for
        the caller, so nobody else's approvals can be read."""
        return dict(self.t.request("GET", f"/accessRequirement/{requirement_id}/status"))

    def entity_access_requirements(self, entity_id: str) -> list[dict[str, Any]]:
        """Requirements bound to the entity or an ancestor (offset paging; the "total" is the
        page size, so pages are read until a short one)."""
        return self._offset_pages(f"/entity/{entity_id}/accessRequirement")
