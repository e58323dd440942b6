"""The moto server the S3 and SageMaker tests use answers the real boto3 clients."""

from __future__ import annotations

import boto3


def test_standard_clients_reach_the_loopback_moto_server(aws):
    assert aws.url.startswith("http://127.0.0.1:")
    aws.client("s3").create_bucket(Bucket="demo-bucket")
    # A client built from the environment alone (AWS_ENDPOINT_URL) sees the same account.
    s3 = boto3.client("s3")
    s3.put_object(Bucket="demo-bucket", Key="k", Body=b"x")
    assert s3.get_object(Bucket="demo-bucket", Key="k")["Body"].read() == b"x"


def test_each_test_starts_from_an_empty_account(aws):
    assert boto3.client("s3").list_buckets()["Buckets"] == []
