"""The local forge: a bare repository under the data directory plus PR rows in the database.

Merging happens here (GitHub merges on its side): ``git merge-tree --write-tree`` computes the
result in the object database, ``commit-tree`` records it, and a compare-and-swap
``update-ref`` moves ``main`` only if nobody moved it meanwhile. Conflicts are reported and
``main`` is never forced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gitops import git, gittree
from gitops.forges.base import (
    ChangeInfo,
    ChangeSpec,
    ChangeState,
    Check,
    CheckState,
    FileChange,
    ForgeError,
    MergeConflict,
    MergeEvent,
    Review,
)
from gitops.forges.models import LocalApproval, LocalCheck, LocalComment, LocalPullRequest
from gitops.gitreader import GitReader
from portal.db import aware, utcnow
from portal.errors import Conflict, Forbidden, NotFound
from portal.settings import Settings

MERGE_ATTEMPTS = 5


class LocalForge:
    kind = "local"

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.git_dir = settings.resolved_gitops_repo
        self.location = str(self.git_dir)
        self._reader = GitReader(self.git_dir)
        self.engine = engine
        self.main = settings.main_branch
        self.base_url = settings.base_url.rstrip("/")

    # ---- reading ---------------------------------------------------------------------------

    def _ref(self, ref: str) -> str:
        return self.main if ref == "main" else ref

    def head(self, ref: str = "main") -> str:
        sha = gittree.resolve(self.git_dir, self._ref(ref))
        if sha is None:
            raise NotFound(f"ref {ref!r} does not exist in the GitOps repository", field="ref")
        return sha

    def read_file(self, path: str, ref: str = "main") -> bytes | None:
        return gittree.read_blob(self.git_dir, self._ref(ref), path)

    def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
        return gittree.list_paths(self.git_dir, self._ref(ref), prefix)

    def list_dir(self, directory: str, ref: str = "main") -> list[str]:
        return gittree.list_dir(self.git_dir, self._ref(ref), directory)

    def read_tree(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        return self._reader.read_tree(prefixes, self._ref(ref))

    def first_parents(self, base: str, head: str, *, limit: int) -> list[str]:
        if not gittree.is_ancestor(self.git_dir, base, head):
            return []
        return git.out(self.git_dir, "rev-list", "--first-parent", "--reverse",
                       f"--max-count={limit}", f"{base}..{head}").split()

    def review(self) -> Review:
        return self

    def changed_paths(self, base: str, head: str) -> list[str]:
        return gittree.changed_paths(self.git_dir, base, head)

    def is_ancestor(self, commit: str, ref: str = "main") -> bool:
        return gittree.is_ancestor(self.git_dir, commit, self._ref(ref))

    # ---- pull requests ---------------------------------------------------------------------

    def open_change(self, spec: ChangeSpec) -> ChangeInfo:
        existing = self.find_change(spec.branch)
        if existing is not None:  # a retry: the same change, no second PR
            return existing
        base = self._ref(spec.base)
        base_sha = self.head(base)
        head = gittree.commit_files(self.git_dir, parent=base_sha, files=spec.files,
                                    message=f"{spec.title}\n\n{spec.body}", author=spec.author)
        # No open PR uses the branch, so a leftover ref (a failed earlier attempt) may be moved.
        if git.run(self.git_dir, "update-ref", f"refs/heads/{spec.branch}", head
                       ).returncode != 0:
            raise ForgeError(f"cannot create branch {spec.branch!r}")
        row = LocalPullRequest(
            branch=spec.branch, open_branch=spec.branch, base=base, title=spec.title,
            body=spec.body, author=spec.author, head_sha=head, base_sha=base_sha,
            labels=list(spec.labels), reviewers=list(spec.reviewers),
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(f"branch {spec.branch!r} already has an open change",
                               field="branch") from None
        return self._info(row)

    def update_change(self, number: int, files: Sequence[FileChange], message: str
                      ) -> ChangeInfo:
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._open_row(session, number)
            new = gittree.commit_files(self.git_dir, parent=row.head_sha, files=files,
                                       message=message, author=row.author)
            if not gittree.update_ref(self.git_dir, row.branch, new, row.head_sha):
                raise Conflict(f"branch {row.branch!r} moved meanwhile; reload and retry",
                               field="branch")
            row.head_sha = new
            row.updated_at = utcnow()
            session.add(row)
            session.commit()
            return self._info(row)

    def get_change(self, number: int) -> ChangeInfo:
        with Session(self.engine, expire_on_commit=False) as session:
            return self._info(self._row(session, number), session)

    def find_change(self, branch: str) -> ChangeInfo | None:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.exec(select(LocalPullRequest).where(
                LocalPullRequest.open_branch == branch)).first()
            return self._info(row, session) if row else None

    def set_check(self, number: int, check: Check) -> None:
        self.set_checks(number, [check])

    def set_checks(self, number: int, checks: Sequence[Check]) -> None:
        def write(session: Session) -> None:
            pr = self._row(session, number)
            names = [c.name for c in checks]
            rows = {r.name: r for r in session.exec(select(LocalCheck).where(
                LocalCheck.number == number, col(LocalCheck.name).in_(names))).all()}
            for check in checks:
                row = rows.get(check.name) or LocalCheck(number=number, name=check.name,
                                                         state="", sha="")
                row.state, row.sha = check.state.value, pr.head_sha
                row.description, row.url = check.description[:1000], check.url[:500]
                row.updated_at = utcnow()
                session.add(row)
                rows[check.name] = row

        if checks:
            self._upsert(write)

    def comment(self, number: int, body: str, *, key: str = "preview") -> None:
        def write(session: Session) -> None:
            self._row(session, number)
            row = session.exec(select(LocalComment).where(
                LocalComment.number == number, LocalComment.key == key)).first()
            row = row or LocalComment(number=number, key=key)
            row.body, row.updated_at = body, utcnow()
            session.add(row)

        self._upsert(write)

    def _upsert(self, write: Callable[[Session], None]) -> None:
        """Run ``write`` (read the row, create it if absent, set it) and commit. Two writers
        creating the same (number, name) at once — a merge re-checking its PR while another
        merge re-checks the open PRs — meet the unique key: the loser runs again and updates
        the winner's row, as GitHub's statuses API does (the latest write wins)."""
        for attempt in range(2):
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    write(session)
                    session.commit()
                return
            except IntegrityError:
                if attempt:
                    raise

    def comments(self, number: int) -> dict[str, str]:
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(LocalComment).where(LocalComment.number == number)).all()
            return {r.key: r.body for r in rows}

    def close_change(self, number: int, *, by: str) -> ChangeInfo:
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._open_row(session, number)
            row.state, row.open_branch = ChangeState.closed.value, None
            row.closed_at, row.closed_by, row.updated_at = utcnow(), by, utcnow()
            session.add(row)
            session.commit()
            return self._info(row, session)

    def approve(self, number: int, *, by: str, head_sha: str | None = None) -> ChangeInfo:
        """Record ``by``'s approval of the PR's current head (a later push makes it stale).
        ``head_sha``: the head the reviewer saw (GitHub's review ``commit_id``); 409
        ``head-moved``, nothing recorded, when the PR has moved on since."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._open_row(session, number)
            if by == row.author:
                raise Forbidden("nobody approves their own change (four-eyes rule)",
                                rule="four-eyes")
            if head_sha is not None and head_sha != row.head_sha:
                raise Conflict(f"the pull request moved on to {row.head_sha[:12]} since you "
                               f"looked at {head_sha[:12]}: review it again",
                               field="head_sha", rule="head-moved")
            approval = session.exec(select(LocalApproval).where(
                LocalApproval.number == number, LocalApproval.by == by)).first()
            approval = approval or LocalApproval(number=number, by=by, sha="")
            approval.sha, approval.at = row.head_sha, utcnow()
            session.add(approval)
            session.commit()
            return self._info(row, session)

    def approvals(self, number: int) -> list[str]:
        """Who approved the PR's current head."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._row(session, number)
            rows = session.exec(select(LocalApproval).where(
                LocalApproval.number == number, LocalApproval.sha == row.head_sha)).all()
            return sorted(a.by for a in rows)

    def merge(self, number: int, *, by: str) -> MergeEvent:
        """Merge into the base branch, or raise: checks not green, no approval, conflict."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._open_row(session, number)
            info = self._info(row, session)
            if not info.checks or any(c.state is not CheckState.success for c in info.checks):
                raise Conflict("checks are not all green; merging is blocked", field="checks",
                               rule="green-checks")
            if not [a for a in self.approvals(number) if a != row.author]:
                raise Conflict("needs an approval of the current head from someone other "
                               "than the author", field="approvals", rule="four-eyes")
            # Claim the PR so two concurrent merges of the same PR cannot both write to main.
            claimed = session.connection().execute(
                update(LocalPullRequest).where(col(LocalPullRequest.number) == number,
                                               col(LocalPullRequest.state) == "open")
                .values(state="merging"))
            session.commit()
            if claimed.rowcount != 1:
                raise Conflict(f"change #{number} is being merged or is no longer open")
        try:
            before, commit = self._merge_into(row)
        except BaseException:
            self._set_state(number, "open")
            raise
        with Session(self.engine, expire_on_commit=False) as session:
            done = self._row(session, number)
            done.state, done.open_branch, done.merge_sha = ChangeState.merged.value, None, commit
            done.merged_at, done.merged_by, done.updated_at = utcnow(), by, utcnow()
            session.add(done)
            session.commit()
        return MergeEvent(commit=commit, before=before, change_number=number, merged_by=by,
                          source="local", extra={"branch": row.branch})

    def _merge_into(self, row: LocalPullRequest) -> tuple[str, str]:
        for _ in range(MERGE_ATTEMPTS):
            before = self.head(row.base)
            result = gittree.merge_tree(self.git_dir, before, row.head_sha)
            if result.tree is None:
                raise MergeConflict(
                    f"change #{row.number} conflicts with {row.base} in: "
                    + ", ".join(result.conflicts[:20]), field="files", rule="merge-conflict")
            message = f"Merge change #{row.number} from {row.branch}\n\n{row.title}"
            commit = git.out(self.git_dir, "commit-tree", result.tree, "-p", before,
                                 "-p", row.head_sha, "-m", message).strip()
            if gittree.update_ref(self.git_dir, row.base, commit, before):
                return before, commit
        raise Conflict(f"{row.base} kept moving while merging change #{row.number}; retry")

    def _set_state(self, number: int, state: str) -> None:
        with Session(self.engine) as session:
            row = self._row(session, number)
            row.state = state
            session.add(row)
            session.commit()

    # ---- rows ------------------------------------------------------------------------------

    def _row(self, session: Session, number: int) -> LocalPullRequest:
        row = session.get(LocalPullRequest, number)
        if row is None:
            raise NotFound(f"change #{number} does not exist", field="number")
        return row

    def _open_row(self, session: Session, number: int) -> LocalPullRequest:
        row = self._row(session, number)
        if row.state != ChangeState.open.value:
            raise Conflict(f"change #{number} is {row.state}, not open", field="number",
                           rule="state")
        return row

    def _info(self, row: LocalPullRequest, session: Session | None = None) -> ChangeInfo:
        checks: list[Check] = []
        if session is not None and row.number is not None:
            rows = session.exec(select(LocalCheck).where(LocalCheck.number == row.number,
                                                         LocalCheck.sha == row.head_sha)
                                .order_by(col(LocalCheck.name))).all()
            checks = [Check(name=c.name, state=CheckState(c.state), description=c.description,
                            url=c.url) for c in rows]
        state = ChangeState.open if row.state == "merging" else ChangeState(row.state)
        return ChangeInfo(
            number=row.number or 0, url=f"{self.base_url}/changes/{row.number}",
            branch=row.branch, base=row.base, title=row.title, body=row.body,
            author=row.author, state=state, head_sha=row.head_sha, base_sha=row.base_sha,
            merge_sha=row.merge_sha, labels=tuple(row.labels), reviewers=tuple(row.reviewers),
            checks=tuple(checks), created_at=aware(row.created_at),
            merged_at=aware(row.merged_at) if row.merged_at else None, merged_by=row.merged_by,
        )
