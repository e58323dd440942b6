"""The SageMaker Model Registry mirrors ours: a package per version, our decisions as approvals.

Each registered version that reaches SageMaker becomes a model package in the group named like
the model, ``PendingManualApproval``; the package's ``CustomerMetadataProperties`` name the
MLflow model and version it stands for. A promotion decided through the toolkit (signed,
verified) is mirrored as ``Approved`` / ``Rejected`` with the approver in
``ApprovalDescription``, so whoever watches SageMaker's registry (EventBridge rules, Studio)
sees the same decisions. MLflow and the GitOps repository stay the record; nothing here moves
traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.errors import TargetError, ToolkitError
from mlops_kit.targets.sagemaker import names
from mlops_kit.targets.sagemaker.clients import client, not_found

if TYPE_CHECKING:
    from mlops_kit.settings import Settings
    from mlops_kit.settings_sagemaker import SageMakerSettings

MODEL_PROPERTY = "mlflow-model"
VERSION_PROPERTY = "mlflow-version"
STATUS_FOR = {"approved": "Approved", "rejected": "Rejected"}


def ensure_group(sm: Any, group: str, project: str) -> str:
    """Create the model package group ``group`` if it is missing; its name."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
        return group
    except Exception as exc:
        if not not_found(exc):
            raise
    sm.create_model_package_group(
        ModelPackageGroupName=group,
        ModelPackageGroupDescription=f"Versions of {group} registered by mlops-kit",
        Tags=names.tag_list({names.PROJECT_TAG: project}),
    )
    return group


def find_package(sm: Any, model_name: str, version: str) -> dict[str, Any] | None:
    """DescribeModelPackage of the package standing for ``model_name`` v``version``, or None."""
    try:
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=model_name)
        summaries = [s for page in pages for s in page.get("ModelPackageSummaryList", [])]
    except Exception as exc:
        if not_found(exc):
            return None
        raise
    for summary in summaries:
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        properties = package.get("CustomerMetadataProperties") or {}
        if (properties.get(MODEL_PROPERTY), properties.get(VERSION_PROPERTY)) == (
            model_name,
            version,
        ):
            return dict(package)
    return None


def register_version(
    sm: Any,
    config: SageMakerSettings,
    *,
    project: str,
    model_name: str,
    version: str,
    model_data_url: str,
    image: str | None = None,
) -> str:
    """The package ARN of ``model_name`` v``version``, created PendingManualApproval if new."""
    found = find_package(sm, model_name, version)
    if found is not None:
        return str(found["ModelPackageArn"])
    ensure_group(sm, model_name, project)
    created = sm.create_model_package(
        ModelPackageGroupName=model_name,
        ModelPackageDescription=f"{model_name} v{version} (MLflow registry)",
        InferenceSpecification={
            "Containers": [{"Image": image or config.image_uri, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": [config.instance_type],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=_properties(model_name, version),
    )
    return str(created["ModelPackageArn"])


def mirror_decision(
    settings: Settings,
    model_name: str,
    version: str,
    *,
    status: str,
    approver: str,
    model_uri: str,
    comment: str = "",
) -> str | None:
    """Mirror a promotion decision (``approved`` / ``rejected``) onto the version's package.

    Registers the package first when the version has none (uploading the model archive from
    ``model_uri`` if needed). Returns the package ARN; None for a status that is no decision
    (``pending``, ``superseded``...). Any failure is a TargetError.
    """
    approval = STATUS_FOR.get(status)
    if approval is None:
        return None
    try:
        return _mirror(
            settings,
            model_name,
            version,
            approval,
            model_uri,
            f"{status} by {approver}" + (f": {comment}" if comment else ""),
        )
    except ToolkitError:
        raise
    except Exception as exc:
        raise TargetError(
            f"could not mirror the decision on {model_name} v{version} into SageMaker's "
            f"model registry: {type(exc).__name__}: {exc}"
        ) from exc


def _mirror(
    settings: Settings,
    model_name: str,
    version: str,
    approval: str,
    model_uri: str,
    description: str,
) -> str:
    from mlops_kit.targets.sagemaker.artifacts import model_data_url

    config = settings.sagemaker
    sm = client(config, "sagemaker")
    package = find_package(sm, model_name, version)
    if package is None:
        url = model_data_url(client(config, "s3"), config, model_name, model_uri)
        arn = register_version(
            sm,
            config,
            project=settings.project,
            model_name=model_name,
            version=version,
            model_data_url=url,
        )
    else:
        arn = str(package["ModelPackageArn"])
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=approval,
        ApprovalDescription=description[:1024],
        # Sent again: an emulator that replaces the properties on update must keep them.
        CustomerMetadataProperties=_properties(model_name, version),
    )
    return arn


def _properties(model_name: str, version: str) -> dict[str, str]:
    return {MODEL_PROPERTY: model_name, VERSION_PROPERTY: version}


__all__ = ["ensure_group", "find_package", "mirror_decision", "register_version"]
