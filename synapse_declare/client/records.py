"""The shapes of what Synapse answers, as the client returns them: ``TypedDict`` views of Synapse's
JSON models (/work/shared/synapse-schemas; field names and types as there), so a caller's
``entity["parentId"]`` or ``handle.get("contentMd5")`` is checked by mypy.

A ``TypedDict`` is a plain ``dict`` at runtime, so a record read from Synapse can be changed and
sent straight back as a request body (an entity, an ACL, a wiki page, a project setting): the
optimistic-concurrency ``etag`` and any field this product does not model travel with it. Every
record is ``total=False``: Synapse omits null fields, and each caller decides what a missing field
means. Polymorphic models (entities, file handles, storage locations) are one record with the
union of their concrete types' fields, told apart by ``concreteType``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast, overload


class Entity(TypedDict, total=False):
    """``Entity`` and the concrete types the product writes (Project, Folder, FileEntity)."""

    id: str
    name: str
    description: str
    etag: str
    createdOn: str
    modifiedOn: str
    createdBy: str
    modifiedBy: str
    parentId: str
    concreteType: str
    alias: str  # Project
    # VersionableEntity, FileEntity
    versionNumber: int
    versionLabel: str
    versionComment: str
    isLatestVersion: bool
    dataFileHandleId: str
    fileNameOverride: str


class EntityHeader(TypedDict, total=False):
    id: str
    name: str
    type: str
    versionNumber: int
    versionLabel: str
    isLatestVersion: bool
    benefactorId: int
    createdOn: str
    modifiedOn: str
    createdBy: str
    modifiedBy: str


class ResourceAccess(TypedDict, total=False):
    principalId: int
    accessType: list[str]


class AccessControlList(TypedDict, total=False):
    id: str
    etag: str
    createdBy: str
    creationDate: str
    modifiedBy: str
    modifiedOn: str
    resourceAccess: list[ResourceAccess]


class AnnotationsValue(TypedDict, total=False):
    type: str  # STRING, DOUBLE, LONG, TIMESTAMP_MS, BOOLEAN, ENTITYID
    value: list[str]


class Annotations(TypedDict, total=False):
    """``Annotations`` (v2): the entity's annotations, guarded by the entity's etag."""

    id: str
    etag: str
    annotations: dict[str, AnnotationsValue]


class FileHandle(TypedDict, total=False):
    """``FileHandle`` and its S3 / cloud-provider and external concrete types."""

    id: str
    etag: str
    createdBy: str
    createdOn: str
    modifiedOn: str
    concreteType: str
    contentType: str
    contentMd5: str
    fileName: str
    storageLocationId: int
    contentSize: int
    status: str
    bucketName: str  # CloudProviderFileHandleInterface
    key: str
    previewId: str
    isPreview: bool
    externalURL: str  # ExternalFileHandle
    endpointUrl: str  # ExternalObjectStoreFileHandle


class UserEntityPermissions(TypedDict, total=False):
    canView: bool
    canEdit: bool
    canMove: bool
    canAddChild: bool
    canCertifiedUserEdit: bool
    canCertifiedUserAddChild: bool
    isCertifiedUser: bool
    canChangePermissions: bool
    canChangeSettings: bool
    canDelete: bool
    canDownload: bool
    canUpload: bool
    canEnableInheritance: bool
    ownerPrincipalId: int
    canPublicRead: bool
    canModerate: bool
    isCertificationRequired: bool
    isEntityOpenData: bool
    isDataContributor: bool


class EntityBundle(TypedDict, total=False):
    """``entitybundle.v2.EntityBundle``: the parts asked for by the request's flags."""

    entity: Entity
    entityType: str
    annotations: Annotations
    permissions: UserEntityPermissions
    path: dict[str, Any]
    hasChildren: bool
    accessControlList: AccessControlList
    fileHandles: list[FileHandle]
    rootWikiId: str
    benefactorAcl: AccessControlList
    fileName: str
    threadCount: int
    restrictionInformation: dict[str, Any]


class VersionInfo(TypedDict, total=False):
    id: str
    versionNumber: int
    versionLabel: str
    versionComment: str
    isLatestVersion: bool
    modifiedBy: str
    modifiedByPrincipalId: str
    modifiedOn: str
    contentSize: str
    contentMd5: str


class TrashedEntity(TypedDict, total=False):
    entityId: str
    entityName: str
    entityType: str
    deletedByPrincipalId: str
    deletedOn: str
    originalParentId: str


class UserProfile(TypedDict, total=False):
    ownerId: str
    etag: str
    userName: str
    firstName: str
    lastName: str
    displayName: str
    email: str
    emails: list[str]
    createdOn: str


class UserGroupHeader(TypedDict, total=False):
    ownerId: str
    userName: str
    firstName: str
    lastName: str
    displayName: str
    email: str
    isIndividual: bool


class Team(TypedDict, total=False):
    id: str
    name: str
    description: str
    icon: str
    canPublicJoin: bool
    canRequestMembership: bool
    etag: str
    createdOn: str
    modifiedOn: str
    createdBy: str
    modifiedBy: str


class TeamMember(TypedDict, total=False):
    teamId: str
    member: UserGroupHeader
    isAdmin: bool


class MembershipInvitation(TypedDict, total=False):
    id: str
    teamId: str
    inviteeId: str
    inviteeEmail: str
    message: str
    expiresOn: str
    createdOn: str
    createdBy: str
    etag: str


class MembershipRequest(TypedDict, total=False):
    id: str
    teamId: str
    userId: str
    message: str
    expiresOn: str
    createdOn: str
    createdBy: str
    etag: str


class StorageLocation(TypedDict, total=False):
    """``StorageLocationSetting`` and its concrete types (S3, external S3/GCS/object store)."""

    concreteType: str
    storageLocationId: int
    uploadType: str
    banner: str
    description: str
    etag: str
    createdOn: str
    createdBy: int
    bucket: str
    baseKey: str
    stsEnabled: bool
    endpointUrl: str
    supportsSubfolders: bool
    url: str  # ExternalStorageLocationSetting


class ProjectSetting(TypedDict, total=False):
    """``UploadDestinationListSetting`` (the only project setting the product reads)."""

    concreteType: str
    id: str
    projectId: str
    settingsType: str
    etag: str
    locations: list[int]


class UploadDestination(TypedDict, total=False):
    concreteType: str
    storageLocationId: int
    uploadType: str
    banner: str
    bucket: str
    baseKey: str
    stsEnabled: bool
    endpointUrl: str
    keyPrefixUUID: str
    destinationType: str


class StsCredentials(TypedDict, total=False):
    """Secrets: registered for redaction as they are read."""

    bucket: str
    baseKey: str
    accessKeyId: str
    secretAccessKey: str
    sessionToken: str
    expiration: str


class WikiHeader(TypedDict, total=False):
    id: str
    title: str
    parentId: str


class WikiPage(TypedDict, total=False):
    id: str
    etag: str
    createdOn: str
    createdBy: str
    modifiedOn: str
    modifiedBy: str
    parentWikiId: str
    title: str
    markdown: str
    attachmentFileHandleIds: list[str]


class WikiOrderHint(TypedDict, total=False):
    """``V2WikiOrderHint``: ``idList`` orders sibling pages; guarded by ``etag``."""

    ownerId: str
    ownerObjectType: str
    idList: list[str]
    etag: str


class FileResult(TypedDict, total=False):
    """One answer of ``POST /fileHandle/batch``; ``preSignedURL`` is a secret."""

    fileHandleId: str
    fileHandle: FileHandle
    preSignedURL: str
    previewPreSignedURL: str
    failureCode: str


class MultipartUploadStatus(TypedDict, total=False):
    uploadId: str
    startedBy: str
    startedOn: str
    updatedOn: str
    partsState: str
    state: str  # UPLOADING, COMPLETED
    resultFileHandleId: str


class PartPresignedUrl(TypedDict, total=False):
    partNumber: int
    uploadPresignedUrl: str  # a secret
    signedHeaders: dict[str, str]


class AddPartResponse(TypedDict, total=False):
    uploadId: str
    partNumber: int
    addPartState: str  # ADD_SUCCESS, ADD_FAILED
    errorMessage: str


class AccessRequirement(TypedDict, total=False):
    """An access requirement bound to an entity (managed, self-signed, terms of use, lock)."""

    id: int
    etag: str
    name: str
    concreteType: str
    accessType: str
    subjectIds: list[dict[str, Any]]
    subjectsDefinedByAnnotations: bool
    createdOn: str
    modifiedOn: str
    createdBy: str
    modifiedBy: str
    versionNumber: int
    termsOfUse: str
    description: str
    isCertifiedUserRequired: bool
    isValidatedProfileRequired: bool
    isDUCRequired: bool
    isIRBApprovalRequired: bool
    areOtherAttachmentsRequired: bool
    isIDUPublic: bool
    isIDURequired: bool
    isTwoFaRequired: bool
    expirationPeriod: int
    jiraKey: str
    openJiraIssue: bool


@overload
def as_json(record: None) -> None: ...
@overload
def as_json(record: Mapping[str, Any]) -> dict[str, Any]: ...
def as_json(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A record where an untyped JSON document is kept (live state, plan files, goldens): the same
    object, no copy; the record's type stops at this boundary."""
    return cast(dict[str, Any] | None, record)


def as_json_list(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`as_json` for a list of records (the same list object)."""
    return cast(list[dict[str, Any]], records)
