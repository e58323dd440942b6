"""The GitOps repository, with real git in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, GitOpsError
from mlops_kit.gitops import manifests
from mlops_kit.gitops.repository import Commit, GitOpsRepo
from mlops_kit.settings import load_settings


@pytest.fixture(autouse=True)
def _no_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config: the toolkit must not need one (nor write one)."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def spec(model: str = "wine-classifier", version: str = "1", env: str = "staging", **kw):
    return DeploymentSpec(
        environment=env,
        model_name=model,
        version=version,
        model_uri=f"/models/{model}/{version}",
        run_id=f"run-{version}",
        **kw,
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_count(repo: GitOpsRepo) -> int:
    return int(git(repo.root, "--git-dir", repo.remote, "rev-list", "--count", repo.branch))


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    repo = GitOpsRepo(tmp_path / "gitops")
    repo.ensure()
    return repo


def test_ensure_creates_bare_remote_clone_and_readme_once(tmp_path):
    repo = GitOpsRepo(tmp_path / "gitops")
    repo.ensure()
    assert git(tmp_path, "--git-dir", repo.remote, "rev-parse", "--is-bare-repository") == "true"
    assert (repo.work / ".git").is_dir()
    assert "environments/<environment>/<model>.yaml" in (repo.work / "README.md").read_text()
    head = repo.head()
    repo.ensure()
    GitOpsRepo(tmp_path / "gitops").ensure()  # another object, as another process would be
    assert repo.head() == head
    assert commit_count(repo) == 1
    (initial,) = repo.history()
    assert initial.subject == "Initialize GitOps repository"


def test_ensure_from_several_processes_at_once(tmp_path):
    script = (
        "import sys; from pathlib import Path; from mlops_kit.gitops.repository import GitOpsRepo; "
        "GitOpsRepo(Path(sys.argv[1])).ensure()"
    )
    root = tmp_path / "gitops"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(root)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    assert commit_count(GitOpsRepo(root)) == 1


def test_from_settings_uses_the_state_dir_and_gitops_section(tmp_path):
    settings = load_settings(
        state_dir=tmp_path / "state",
        gitops={"remote": str(tmp_path / "r.git"), "branch": "gitops", "manifest": "seldon-v2"},
    )
    repo = GitOpsRepo.from_settings(settings)
    assert repo.root == (tmp_path / "state" / "gitops").resolve()
    assert repo.work == repo.root / "work"
    assert (repo.remote, repo.branch, repo.manifest_format) == (
        str((tmp_path / "r.git").resolve()),
        "gitops",
        "seldon-v2",
    )
    default = GitOpsRepo.from_settings(load_settings(state_dir=tmp_path / "s2"))
    assert default.remote == str((tmp_path / "s2" / "gitops" / "origin.git").resolve())


def test_write_commits_a_valid_manifest_that_reads_back(repo):
    deployed = spec(replicas=2)
    sha = repo.write(deployed, actor="alice")
    assert sha is not None and sha == repo.head()
    text = repo.read_file("main", "environments/staging/wine-classifier.yaml")
    assert text == (repo.work / "environments/staging/wine-classifier.yaml").read_text()
    doc = manifests.load(text)
    assert doc["kind"] == "SeldonDeployment"
    assert manifests.spec_from_manifest(doc) == deployed
    assert repo.get("staging", "wine-classifier") == deployed
    assert repo.read("staging") == [deployed]
    assert repo.read("production") == []
    assert repo.get("production", "wine-classifier") is None
    author = git(repo.work, "log", "-1", "--format=%an <%ae> / %cn <%ce>", sha)
    assert author == "alice <alice@mlops-kit.local> / alice <alice@mlops-kit.local>"


def test_writing_the_same_spec_twice_makes_no_second_commit(repo):
    first = repo.write(spec(), actor="alice")
    count = commit_count(repo)
    assert repo.write(spec(), actor="bob", message="again") is None
    assert commit_count(repo) == count
    assert repo.head() == first


def test_trailers_are_parsed_back_by_history(repo):
    sha = repo.write(
        spec(version="3"),
        actor="alice",
        message="Deploy the challenger",
        trailers={"Gate": "passed", "Approved-By": "carol"},
    )
    newest = repo.history()[0]
    assert isinstance(newest, Commit)
    assert (newest.sha, newest.author, newest.subject) == (sha, "alice", "Deploy the challenger")
    assert newest.trailers == {
        "Model": "wine-classifier",
        "Model-Version": "3",
        "Run-Id": "run-3",
        "Environment": "staging",
        "Actor": "alice",
        "Gate": "passed",
        "Approved-By": "carol",
    }
    assert newest.timestamp.tzinfo is not None
    assert abs(datetime.now(UTC) - newest.timestamp) < timedelta(minutes=5)
    body = git(repo.work, "log", "-1", "--format=%B", sha)
    assert body.endswith("Approved-By: carol")


def test_history_filters_by_environment_model_and_path_newest_first(repo):
    a = repo.write(spec("wine-classifier", "1"), actor="alice")
    b = repo.write(spec("iris", "1"), actor="alice")
    c = repo.write(spec("wine-classifier", "2"), actor="bob")
    d = repo.write(spec("wine-classifier", "2", env="production"), actor="bob")
    shas = lambda commits: [x.sha for x in commits]  # noqa: E731
    assert shas(repo.history(environment="staging", model="wine-classifier")) == [c, a]
    assert shas(repo.history(environment="staging")) == [c, b, a]
    assert shas(repo.history(model="wine-classifier")) == [d, c, a]
    assert shas(repo.history("environments/production")) == [d]
    assert shas(repo.history(limit=2)) == [d, c]
    assert len(repo.history()) == 5  # with the initial commit


def test_remove_is_idempotent(repo):
    repo.write(spec(), actor="alice")
    sha = repo.remove("staging", "wine-classifier", actor="bob")
    assert sha is not None
    assert repo.get("staging", "wine-classifier") is None
    assert repo.read("staging") == []
    count = commit_count(repo)
    assert repo.remove("staging", "wine-classifier", actor="bob") is None
    assert commit_count(repo) == count
    assert repo.history()[0].trailers == {
        "Model": "wine-classifier",
        "Environment": "staging",
        "Actor": "bob",
    }


def test_revert_makes_a_real_revert_commit(repo):
    repo.write(spec(version="1"), actor="alice")
    bad = repo.write(spec(version="2"), actor="alice")
    assert repo.get("staging", "wine-classifier").version == "2"
    sha = repo.revert(bad, actor="ops", trailers={"Reason": "smoke test failed"})
    assert repo.head() == sha
    assert repo.get("staging", "wine-classifier").version == "1"
    commit = repo.history()[0]
    assert commit.subject == 'Revert "Deploy wine-classifier v2 to staging"'
    assert commit.author == "ops"
    assert commit.trailers == {
        "Model": "wine-classifier",
        "Environment": "staging",
        "Reverts": bad,
        "Actor": "ops",
        "Reason": "smoke test failed",
    }
    assert f"This reverts commit {bad}." in git(repo.work, "log", "-1", "--format=%B", sha)
    with pytest.raises(GitOpsError, match="already undone|conflict"):
        repo.revert(bad, actor="ops")
    with pytest.raises(GitOpsError, match="no branch or commit"):
        repo.revert("0" * 40, actor="ops")


def test_branch_commit_files_and_merge_give_a_merge_commit_with_trailers(repo):
    repo.write(spec(version="4"), actor="ci")
    staged = repo.read_file("main", "environments/staging/wine-classifier.yaml")
    prod_text = staged.replace("environment: staging", "environment: production")
    base = repo.head()
    assert repo.create_branch("promote/wine-classifier-v4") == base
    with pytest.raises(GitOpsError, match="already exists"):
        repo.create_branch("promote/wine-classifier-v4")
    path = "environments/production/wine-classifier.yaml"
    request = {path: prod_text, "promotions/wine-classifier-v4.json": '{"state": "open"}\n'}
    change = repo.commit_files(
        "promote/wine-classifier-v4",
        request,
        actor="alice",
        message="Promote wine-classifier v4 to production",
        trailers={"Model": "wine-classifier", "Model-Version": "4"},
    )
    assert change is not None
    assert (
        repo.commit_files("promote/wine-classifier-v4", request, actor="alice", message="x") is None
    )
    assert repo.list_branches("promote/") == ["promote/wine-classifier-v4"]
    assert repo.read_file("promote/wine-classifier-v4", path) == prod_text
    assert repo.read_file("main", path) is None  # not merged yet
    assert repo.read_file(base, "environments/staging/wine-classifier.yaml") == staged
    repo.write(spec("iris"), actor="ci")  # main moves on meanwhile

    merge = repo.merge(
        "promote/wine-classifier-v4",
        actor="carol",
        message="Merge promotion of wine-classifier v4",
        trailers={"Approved-By": "carol", "Requested-By": "alice"},
    )
    assert repo.head() == merge
    parents = git(repo.work, "rev-list", "--parents", "-n", "1", merge).split()[1:]
    assert len(parents) == 2 and parents[1] == change
    commit = repo.history(environment="production")[0]
    assert commit.sha == merge and commit.author == "carol"
    assert commit.trailers == {
        "Branch": "promote/wine-classifier-v4",
        "Actor": "carol",
        "Approved-By": "carol",
        "Requested-By": "alice",
    }
    promoted = repo.get("production", "wine-classifier")
    assert promoted == spec(version="4", env="production")
    with pytest.raises(GitOpsError, match="already merged"):
        repo.merge("promote/wine-classifier-v4", actor="carol", message="again")

    # A file deleted on a branch, and the branch deleted (idempotently).
    repo.create_branch("cleanup")
    repo.commit_files(
        "cleanup", {"promotions/wine-classifier-v4.json": None}, actor="a", message="rm"
    )
    assert repo.read_file("cleanup", "promotions/wine-classifier-v4.json") is None
    repo.delete_branch("promote/wine-classifier-v4")
    repo.delete_branch("promote/wine-classifier-v4")
    assert repo.list_branches("promote/") == []
    assert repo.list_branches() == ["cleanup", "main"]
    # Reverting the merge undoes the promotion.
    repo.revert(merge, actor="ops")
    assert repo.get("production", "wine-classifier") is None


def test_two_clones_of_one_remote_see_each_others_commits(tmp_path):
    remote = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    first = GitOpsRepo(tmp_path / "a", remote=str(remote))
    second = GitOpsRepo(tmp_path / "b", remote=str(remote))
    first.ensure()
    second.ensure()
    assert first.head() == second.head()
    first.write(spec("wine-classifier"), actor="alice")
    assert second.get("staging", "wine-classifier") == spec("wine-classifier")
    second.write(spec("iris"), actor="bob")  # on top of alice's commit, no conflict
    assert [s.model_name for s in first.read("staging")] == ["iris", "wine-classifier"]
    assert first.head() == second.head()
    assert commit_count(first) == 3


def test_concurrent_writers_keep_a_linear_history_and_lose_nothing(tmp_path):
    remote = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    # Ten threads: six share one clone (the lock), four share another (push retries).
    repos = [GitOpsRepo(tmp_path / "a", remote=str(remote))] * 6
    repos += [GitOpsRepo(tmp_path / "b", remote=str(remote))] * 4
    repos[0].ensure()
    errors: list[BaseException] = []
    results: list[str | None] = []

    def deploy(i: int) -> None:
        try:
            results.append(repos[i].write(spec(f"model-{i}"), actor=f"user{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(set(results)) == 10 and None not in results
    log = git(tmp_path, "--git-dir", str(remote), "rev-list", "--parents", "main").splitlines()
    assert len(log) == 11
    assert all(len(line.split()) <= 2 for line in log)  # no merges: linear
    reader = GitOpsRepo(tmp_path / "c", remote=str(remote))
    assert sorted(s.model_name for s in reader.read("staging")) == sorted(
        f"model-{i}" for i in range(10)
    )


def test_git_errors_raise_gitops_error_with_command_and_stderr(tmp_path):
    bad = GitOpsRepo(tmp_path / "gitops", remote=str(tmp_path / "no-such-remote.git"))
    with pytest.raises(GitOpsError) as info:
        bad.ensure()
    message = str(info.value)
    assert "git clone" in message and "no-such-remote.git" in message
    assert "does not exist" in message
    with pytest.raises(GitOpsError, match="git clone"):
        bad.read("staging")


def test_an_unreachable_url_remote_fails_without_prompting(tmp_path):
    repo = GitOpsRepo(tmp_path / "gitops", remote="https://user:s3cret@127.0.0.1:9/none.git")
    with pytest.raises(GitOpsError) as info:
        repo.ensure()
    assert "s3cret" not in str(info.value) and "***@127.0.0.1" in str(info.value)


def test_environment_identity_and_repo_variables_are_ignored(repo, monkeypatch, tmp_path):
    """Inside a git hook or CI, GIT_DIR / GIT_AUTHOR_* must not redirect or rename commits."""
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "ci-bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@ci")
    sha = repo.write(spec(), actor="alice")
    monkeypatch.delenv("GIT_DIR")
    assert git(repo.work, "log", "-1", "--format=%an %ce", sha) == "alice alice@mlops-kit.local"


def test_bad_input_is_refused_before_git_runs(repo):
    with pytest.raises(ConfigError, match="actor"):
        repo.write(spec(), actor="  ")
    with pytest.raises(ConfigError, match="trailer key"):
        repo.write(spec(), actor="a", trailers={"Bad Key": "x"})
    with pytest.raises(ConfigError, match="one-line"):
        repo.write(spec(), actor="a", trailers={"Note": "two\nlines"})
    with pytest.raises(ConfigError, match="path segment"):
        repo.remove("../etc", "x", actor="a")
    with pytest.raises(ConfigError, match="relative path"):
        repo.commit_files("main", {"../outside": "x"}, actor="a", message="m")
    with pytest.raises(ConfigError, match="branch name"):
        repo.create_branch("bad..name")
    with pytest.raises(GitOpsError, match="main branch"):
        repo.delete_branch("main")
    assert commit_count(repo) == 1


def test_a_foreign_file_in_an_environment_is_an_error_not_ignored(repo):
    repo.commit_files(
        "main",
        {"environments/staging/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"},
        actor="human",
        message="hand edit",
    )
    with pytest.raises(ConfigError, match="environments/staging/cm.yaml: not a deployment"):
        repo.read("staging")


def test_a_manifest_copied_by_hand_runs_where_it_lies(repo):
    text = manifests.dump(manifests.render(spec(version="7")))
    repo.commit_files(
        "main", {"environments/production/wine-classifier.yaml": text}, actor="h", message="cp"
    )
    assert repo.get("production", "wine-classifier") == spec(version="7", env="production")


def test_seldon_v2_format_round_trips_through_the_repo(tmp_path):
    repo = GitOpsRepo(tmp_path / "gitops", manifest_format="seldon-v2")
    deployed = spec(flavour="sklearn", traffic=40)
    repo.write(deployed, actor="alice")
    assert (
        manifests.load(repo.read_file("main", "environments/staging/wine-classifier.yaml"))["kind"]
        == "Model"
    )
    assert repo.get("staging", "wine-classifier") == deployed
