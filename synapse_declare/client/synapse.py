"""Typed Synapse REST calls: one method per endpoint the reconciler uses; pagination followed."""

from __future__ import annotations

from typing import Any, cast

from ..auth import Credentials
from ..errors import NotFound
from ..redact import register_secret
from .http import ClientOptions, Transport
from .records import (
    AccessControlList,
    AccessRequirement,
    AddPartResponse,
    Annotations,
    Entity,
    EntityBundle,
    EntityHeader,
    FileHandle,
    FileResult,
    MultipartUploadStatus,
    PartPresignedUrl,
    ProjectSetting,
    StorageLocation,
    StsCredentials,
    Team,
    TeamMember,
    TrashedEntity,
    UploadDestination,
    UserGroupHeader,
    UserProfile,
    VersionInfo,
    WikiHeader,
    WikiOrderHint,
    WikiPage,
)

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


def connect(credentials: Credentials, options: ClientOptions | None = None) -> SynapseAPI:
    """A client speaking to ``credentials``' endpoints with their token: the one way code
    outside the client gets one (no module outside it builds a transport itself)."""
    return SynapseAPI(Transport(credentials, credentials.endpoints, options or ClientOptions()))


class SynapseAPI:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    # -- users and principals ------------------------------------------------------------

    def my_profile(self) -> UserProfile:
        return cast(UserProfile, dict(self.t.request("GET", "/userProfile")))

    def headers_by_alias(self, names: list[str]) -> list[UserGroupHeader]:
        found: list[UserGroupHeader] = []
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
    ) -> list[UserGroupHeader]:
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

    def _offset_pages(self, path: str, page: int = 50) -> list[Any]:
        """Every ``results`` item of an offset-paged GET, reading pages until a short one (some
        of these endpoints report the page size as their total, so the total cannot be used)."""
        found: list[Any] = []
        offset = 0
        while True:
            body = self.t.request("GET", path, params={"offset": offset, "limit": page})
            results = list(body.get("results", [])) if isinstance(body, dict) else []
            found.extend(results)
            if len(results) < page:
                return found
            offset += page

    def group_headers_by_ids(self, ids: list[int]) -> list[UserGroupHeader]:
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

    def children(self, parent_id: str, types: list[str] | None = None) -> list[EntityHeader]:
        """Every child header of ``parent_id`` (all pages); all entity types by default."""
        return self._children_pages(parent_id, types or ALL_ENTITY_TYPES, census=False)[0]

    def children_census(self, parent_id: str) -> tuple[list[EntityHeader], int]:
        """The folder and file children of ``parent_id`` (all pages) and the sum of its files'
        sizes, which Synapse adds to the first page at no extra call."""
        return self._children_pages(parent_id, ["folder", "file"], census=True)

    def _children_pages(
        self, parent_id: str, types: list[str], *, census: bool
    ) -> tuple[list[EntityHeader], int]:
        page_token: str | None = None
        headers: list[EntityHeader] = []
        total = 0
        while True:
            request: dict[str, Any] = {"parentId": parent_id, "includeTypes": types}
            if census:
                request["includeSumFileSizes"] = page_token is None
            request.update(sortBy="NAME", sortDirection="ASC", nextPageToken=page_token)
            body = self.t.request("POST", "/entity/children", body=request)
            headers.extend(body.get("page", []))
            total += int(body.get("sumFileSizesBytes") or 0)
            page_token = body.get("nextPageToken")
            if not page_token:
                return headers, total

    def count_children(self, parent_id: str, types: list[str]) -> int:
        """How many children of the given types ``parent_id`` has (one call, no listing)."""
        body = self.t.request(
            "POST",
            "/entity/children",
            body={"parentId": parent_id, "includeTypes": types, "includeTotalChildCount": True},
        )
        return int(body.get("totalChildCount") or 0) if isinstance(body, dict) else 0

    def trash_entity(self, entity_id: str) -> None:
        """Move an entity (and its subtree) to the caller's trash: restorable for 30 days."""
        self.t.request("PUT", f"/trashcan/trash/{entity_id}")

    def trash_view(self, *, page: int = 100) -> list[TrashedEntity]:
        """Every TrashedEntity the caller deleted (offset paging, stops on a short page)."""
        return self._offset_pages("/trashcan/view", page)

    def restore_from_trash(self, entity_id: str) -> None:
        """Back to its original parent and name (``PUT /trashcan/restore/{id}``)."""
        self.t.request("PUT", f"/trashcan/restore/{entity_id}")

    def bundle(self, entity_id: str, **flags: bool) -> EntityBundle:
        return cast(
            EntityBundle, dict(self.t.request("POST", f"/entity/{entity_id}/bundle2", body=flags))
        )

    def create_bundle(
        self,
        entity: dict[str, Any],
        annotations: dict[str, Any] | None,
        resource_access: list[dict[str, Any]] | None,
    ) -> EntityBundle:
        """Entity, annotations and ACL in one call (one transaction on the server)."""
        body: dict[str, Any] = {"entity": entity}
        if annotations is not None:
            body["annotations"] = {"annotations": annotations}
        if resource_access is not None:
            body["accessControlList"] = {"resourceAccess": resource_access}
        return cast(EntityBundle, dict(self.t.request("POST", "/entity/bundle2/create", body=body)))

    def get_entity(self, entity_id: str) -> Entity:
        return cast(Entity, dict(self.t.request("GET", f"/entity/{entity_id}")))

    def update_entity(self, entity: dict[str, Any]) -> Entity:
        return cast(Entity, dict(self.t.request("PUT", f"/entity/{entity['id']}", body=entity)))

    def get_annotations(self, entity_id: str) -> Annotations:
        return cast(Annotations, dict(self.t.request("GET", f"/entity/{entity_id}/annotations2")))

    def put_annotations(
        self, entity_id: str, etag: str, annotations: dict[str, Any]
    ) -> Annotations:
        return cast(
            Annotations,
            dict(
                self.t.request(
                    "PUT",
                    f"/entity/{entity_id}/annotations2",
                    body={"id": entity_id, "etag": etag, "annotations": annotations},
                )
            ),
        )

    # -- ACLs ------------------------------------------------------------------------------

    def get_acl(self, entity_id: str) -> AccessControlList | None:
        """The entity's own ACL, or None when it inherits."""
        try:
            return cast(AccessControlList, dict(self.t.request("GET", f"/entity/{entity_id}/acl")))
        except NotFound as err:
            if "inherits its permissions" in err.reason:
                return None
            raise

    def create_acl(
        self, entity_id: str, resource_access: list[dict[str, Any]]
    ) -> AccessControlList:
        return cast(
            AccessControlList,
            dict(
                self.t.request(
                    "POST",
                    f"/entity/{entity_id}/acl",
                    body={"id": entity_id, "resourceAccess": resource_access},
                )
            ),
        )

    def update_acl(
        self, entity_id: str, etag: str, resource_access: list[dict[str, Any]]
    ) -> AccessControlList:
        return cast(
            AccessControlList,
            dict(
                self.t.request(
                    "PUT",
                    f"/entity/{entity_id}/acl",
                    body={"id": entity_id, "etag": etag, "resourceAccess": resource_access},
                )
            ),
        )

    def delete_acl(self, entity_id: str) -> None:
        self.t.request("DELETE", f"/entity/{entity_id}/acl")

    # -- storage locations, upload destinations, STS ---------------------------------------

    def my_storage_locations(self) -> list[StorageLocation]:
        """The caller's storage locations (Synapse returns the newest 100)."""
        body = self.t.request("GET", "/storageLocation")
        return list(body.get("list", [])) if isinstance(body, dict) else []

    def create_storage_location(self, setting: dict[str, Any]) -> StorageLocation:
        """Idempotent per user on Synapse: identical settings return the existing location."""
        return cast(StorageLocation, dict(self.t.request("POST", "/storageLocation", body=setting)))

    def upload_setting(self, container_id: str) -> ProjectSetting | None:
        """The container's own upload-destination setting; None when it has none (Synapse
        answers 200 with an empty body)."""
        body = self.t.request("GET", f"/projectSettings/{container_id}/type/upload")
        return cast(ProjectSetting, dict(body)) if isinstance(body, dict) and body else None

    def create_upload_setting(self, container_id: str, locations: list[int]) -> ProjectSetting:
        return cast(
            ProjectSetting,
            dict(
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
            ),
        )

    def update_upload_setting(self, setting: dict[str, Any]) -> None:
        """PUT answers 200 with an empty body; a stale etag is 412."""
        self.t.request("PUT", "/projectSettings", body=setting)

    def upload_destination(self, entity_id: str) -> UploadDestination:
        return cast(
            UploadDestination,
            dict(self.t.request("GET", f"/entity/{entity_id}/uploadDestination", service="file")),
        )

    def sts_credentials(self, entity_id: str, permission: str) -> StsCredentials:
        """Temporary AWS credentials for an STS-enabled folder; registered for redaction."""
        body = cast(
            StsCredentials,
            dict(
                self.t.request("GET", f"/entity/{entity_id}/sts", params={"permission": permission})
            ),
        )
        for secret in (
            body.get("accessKeyId"),
            body.get("secretAccessKey"),
            body.get("sessionToken"),
        ):
            register_secret(secret)
        return body

    # -- wikis (v1: markdown inline) -------------------------------------------------------

    def wiki_headers(self, owner_id: str) -> list[WikiHeader]:
        """Every wiki page of the owner; empty when it has no root page (Synapse: 404)."""
        headers: list[WikiHeader] = []
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

    def wiki_order_hint(self, owner_id: str) -> WikiOrderHint:
        """The owner's V2WikiOrderHint: ``idList`` orders sibling pages; guarded by ``etag``."""
        return cast(
            WikiOrderHint, dict(self.t.request("GET", f"/entity/{owner_id}/wiki2orderhint"))
        )

    def put_wiki_order_hint(self, owner_id: str, hint: dict[str, Any]) -> WikiOrderHint:
        return cast(
            WikiOrderHint,
            dict(self.t.request("PUT", f"/entity/{owner_id}/wiki2orderhint", body=hint)),
        )

    def wiki_attachment_names(self, owner_id: str, wiki_id: str) -> list[str]:
        """The file names of a wiki page's attachments."""
        body = self.t.request("GET", f"/entity/{owner_id}/wiki/{wiki_id}/attachmenthandles")
        return [str(h.get("fileName")) for h in body.get("list", [])]

    def get_wiki(self, owner_id: str, wiki_id: str) -> WikiPage:
        return cast(WikiPage, dict(self.t.request("GET", f"/entity/{owner_id}/wiki/{wiki_id}")))

    def create_wiki(
        self, owner_id: str, title: str, markdown: str, parent_wiki_id: str | None
    ) -> WikiPage:
        body: dict[str, Any] = {"title": title, "markdown": markdown}
        if parent_wiki_id is not None:
            body["parentWikiId"] = parent_wiki_id
        return cast(WikiPage, dict(self.t.request("POST", f"/entity/{owner_id}/wiki", body=body)))

    def update_wiki(self, owner_id: str, page: dict[str, Any]) -> WikiPage:
        return cast(
            WikiPage,
            dict(self.t.request("PUT", f"/entity/{owner_id}/wiki/{page['id']}", body=page)),
        )

    # -- storage / migration -------------------------------------------------------------------
    # Used by ``migration.multipart``. The multipart calls are writes for the transport (an unknown
    # outcome raises AmbiguousWrite); the migration engine decides which of them are safe to send
    # again (start: Synapse's request hash returns the same upload; presigned URL batch: changes
    # nothing; add part: records the same part again; complete: answers the same status).

    def children_of_types(self, parent_id: str, types: list[str]) -> list[EntityHeader]:
        """Every child header of ``parent_id`` of the given entity types (all pages)."""
        return self.children(parent_id, types)

    def version_bundle(self, entity_id: str, version: int, **flags: bool) -> EntityBundle:
        return cast(
            EntityBundle,
            dict(
                self.t.request("POST", f"/entity/{entity_id}/version/{version}/bundle2", body=flags)
            ),
        )

    def entity_versions(self, entity_id: str, *, page: int = 50) -> list[VersionInfo]:
        """Every VersionInfo of an entity, newest first (offset paging, stops on a short page)."""
        return self._offset_pages(f"/entity/{entity_id}/version", page)

    def get_storage_location(self, location_id: int) -> StorageLocation:
        return cast(StorageLocation, dict(self.t.request("GET", f"/storageLocation/{location_id}")))

    def get_file_handle(self, handle_id: str) -> FileHandle:
        """Only the handle's creator may read it this way (403 otherwise)."""
        return cast(
            FileHandle, dict(self.t.request("GET", f"/fileHandle/{handle_id}", service="file"))
        )

    def file_handle_batch(self, body: dict[str, Any]) -> list[FileResult]:
        """POST /fileHandle/batch (≤ 100 associations): handles and/or presigned download URLs,
        one result per request (``failureCode`` when refused). The URLs are secrets: callers
        never log them."""
        answer = self.t.request("POST", "/fileHandle/batch", body=body, service="file")
        return list(answer.get("requestedFiles", [])) if isinstance(answer, dict) else []

    def create_external_s3_handle(self, handle: dict[str, Any]) -> FileHandle:
        """POST /externalFileHandle/s3: register an object in an external S3 location the caller
        created (Synapse HEADs it; the MD5 is taken as given)."""
        return cast(
            FileHandle,
            dict(self.t.request("POST", "/externalFileHandle/s3", body=handle, service="file")),
        )

    def start_multipart(
        self, request: dict[str, Any], *, force_restart: bool
    ) -> MultipartUploadStatus:
        """POST /file/multipart (upload or copy request) → MultipartUploadStatus."""
        return cast(
            MultipartUploadStatus,
            dict(
                self.t.request(
                    "POST",
                    "/file/multipart",
                    body=request,
                    params={"forceRestart": "true" if force_restart else "false"},
                    service="file",
                )
            ),
        )

    def presigned_part_urls(
        self, upload_id: str, part_numbers: list[int]
    ) -> list[PartPresignedUrl]:
        body = self.t.request(
            "POST",
            f"/file/multipart/{upload_id}/presigned/url/batch",
            body={"uploadId": upload_id, "partNumbers": part_numbers},
            service="file",
        )
        return list(body.get("partPresignedUrls", []))

    def add_part(self, upload_id: str, part_number: int, part_md5_hex: str) -> AddPartResponse:
        return cast(
            AddPartResponse,
            dict(
                self.t.request(
                    "PUT",
                    f"/file/multipart/{upload_id}/add/{part_number}",
                    params={"partMD5Hex": part_md5_hex},
                    service="file",
                )
            ),
        )

    def complete_multipart(self, upload_id: str) -> MultipartUploadStatus:
        return cast(
            MultipartUploadStatus,
            dict(self.t.request("PUT", f"/file/multipart/{upload_id}/complete", service="file")),
        )

    def update_version_file_handle(
        self, entity_id: str, version: int, old_handle_id: str, new_handle_id: str
    ) -> None:
        """Repoint one version in place; 412 when the version no longer has ``old_handle_id``."""
        self.t.request(
            "PUT",
            f"/entity/{entity_id}/version/{version}/filehandle",
            body={"oldFileHandleId": old_handle_id, "newFileHandleId": new_handle_id},
        )

    def update_entity_new_version(self, entity: dict[str, Any]) -> Entity:
        """PUT /entity/{id}?newVersion=true (etag-guarded: 412 when the entity changed)."""
        return cast(
            Entity,
            dict(
                self.t.request(
                    "PUT", f"/entity/{entity['id']}", body=entity, params={"newVersion": "true"}
                )
            ),
        )

    # -- effective access (read-only) ------------------------------------------------------

    def entity_path(self, entity_id: str) -> list[EntityHeader]:
        """The entity's ancestors and itself, root first (``GET /entity/{id}/path``)."""
        body = self.t.request("GET", f"/entity/{entity_id}/path")
        return list(body.get("path", [])) if isinstance(body, dict) else []

    def benefactor(self, entity_id: str) -> EntityHeader:
        """The header of the entity whose ACL governs ``entity_id``."""
        return cast(EntityHeader, dict(self.t.request("GET", f"/entity/{entity_id}/benefactor")))

    def team_member_ids(self, team_id: int) -> list[UserGroupHeader]:
        """Every member's UserGroupHeader (``GET /teamMembers/{id}``, offset paging by 50)."""
        members: list[TeamMember] = self._offset_pages(f"/teamMembers/{team_id}")
        return [m["member"] for m in members]

    def teams_by_fragment(self, fragment: str) -> list[Team]:
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

    def entity_access_requirements(self, entity_id: str) -> list[AccessRequirement]:
        """Requirements bound to the entity or an ancestor (offset paging; the "total" is the
        page size, so pages are read until a short one)."""
        return self._offset_pages(f"/entity/{entity_id}/accessRequirement")
