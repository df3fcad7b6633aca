"""An S3-compatible server of the tests' own: moto's server mode (with atomic conditional
writes, moto_atomic.py) on a free local port, with one bucket. `env()` is the configuration that points AIchemy at it."""

import os
import subprocess
import sys
import time
import urllib.request

import boto3

from lakehouse import free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-6d1f"
REGION = "us-east-1"


class S3Server:
    def __init__(self, bucket="lake"):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        # moto's server, with its conditional writes made atomic (see moto_atomic.py).
        server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_atomic.py")
        self.process = subprocess.Popen(
            [sys.executable, server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.2)
        self.client().create_bucket(Bucket=bucket)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def env(self):
        return {
            "AICHEMY_STORAGE__S3__ENDPOINT": self.endpoint,
            "AICHEMY_STORAGE__S3__REGION": REGION,
            "AICHEMY_STORAGE__S3__ACCESS_KEY_ID": ACCESS_KEY,
            "AICHEMY_STORAGE__S3__SECRET_ACCESS_KEY": "${ENV:AICHEMY_TEST_S3_SECRET}",
            "AICHEMY_TEST_S3_SECRET": SECRET_KEY,
        }

    def keys(self, prefix=""):
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
