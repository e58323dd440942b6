"""The GitOps record: the git repository, rendered manifests, sync, deploy, Argo CD, audit."""
