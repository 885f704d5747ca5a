"""What Synapse refuses to a user who has not passed its certification quiz, as each resource
kind says it (``needs_certification``), on pure golden plans: no emulator.

The planner refuses a plan holding any such change for an uncertified user (goldens
``uncertified_*``); here, which changes of a certified user's plans would need it.
"""

from __future__ import annotations

import pytest
from golden_support import GOLDEN, plan_case

from synapse_declare.resources import registry


def needing(case: str) -> set[str]:
    plan = plan_case(GOLDEN / case)
    return {
        change.address
        for change in plan.changes
        if registry.kind_of(change.resource).needs_certification(change)
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # Creating a project needs none; its wiki pages and every folder do.
        (
            "create_all",
            {
                "project:Golden create all#wiki",
                "project:Golden create all#wiki/Data access",
                "project:Golden create all#wiki/Data access/Forms",
                "project:Golden create all/folder:Raw Data",
                "project:Golden create all/folder:Raw Data/folder:RNAseq",
                "project:Golden create all/folder:Raw Data/folder:WGS",
                "project:Golden create all/folder:Releases",
                "project:Golden create all/folder:Releases/folder:2024-05",
            },
        ),
        # Letting AUTHENTICATED_USERS download needs it, on a project too.
        ("create_public_grants", {"project:Golden public", "project:Golden public/folder:Open"}),
        # Updating a project, its wiki pages or the sub-page order needs none; a new page and
        # changed folders do.
        (
            "update",
            {
                "project:Golden update#wiki/New page",
                "project:Golden update/folder:Raw Data",
                "project:Golden update/folder:Raw Data/folder:New folder",
                "project:Golden update/folder:Releases",
            },
        ),
        ("wiki_update_markdown", set()),  # a project's page changed: open to its editors
        (
            "create_folder_wiki",  # a folder's page: like the folder itself
            {
                "project:Golden folder wiki/folder:Docs",
                "project:Golden folder wiki/folder:Docs#wiki",
            },
        ),
        # Migrated files are updated (a new version each); storage and upload settings are not
        # content.
        ("migration_counts", {"project:Golden migration#migration"}),
        ("storage_create", {"project:Golden storage create/folder:Pipelines"}),
        ("team_create_with_acl", set()),  # teams and memberships are open to every user
        ("prune", set()),  # Synapse checks the quiz on create and update, not on delete
        # Adopting a project needs none; its folders are then adopted unmarked (a warning).
        ("uncertified_adopt_folders", set()),
        ("adopt_with_wiki", {"project:Golden adopt wiki/folder:Hand folder"}),
    ],
)
def test_each_kind_says_what_synapse_refuses_to_an_uncertified_user(
    case: str, expected: set[str]
) -> None:
    assert needing(case) == expected
