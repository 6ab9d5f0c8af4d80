"""Create topics and consumer groups on a running Tern through its admin
gRPC service (tern.admin.v1.TernAdmin), for the examples.

    python tern_admin.py ENDPOINT topic NAME [QUEUES]
    python tern_admin.py ENDPOINT group NAME [MAX_RETRIES]

`tern topic create` and `tern group create` do the same from the command
line. This script compiles Tern's admin .proto (from this repository) with
grpc_tools, which the RocketMQ Python SDK already installs, so it needs
nothing else. Creating something that already exists is not an error.
"""

import importlib
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "protocol", "proto")
PROTO = "tern/admin/v1/admin.proto"


def _stubs():
    out = tempfile.mkdtemp(prefix="tern-admin-py-")
    protoc_include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{protoc_include}",
                      f"--python_out={out}", f"--grpc_python_out={out}", PROTO])
    if rc != 0:
        raise SystemExit(f"compiling {PROTO} failed ({rc})")
    sys.path.insert(0, out)
    pb = importlib.import_module("tern.admin.v1.admin_pb2")
    rpc = importlib.import_module("tern.admin.v1.admin_pb2_grpc")
    return pb, rpc


def create(endpoint, kind, name, number=0):
    """Creates topic or group `name`; `number` is the queue count of a topic
    or the max retries of a group (0: the default)."""
    pb, rpc = _stubs()
    with grpc.insecure_channel(endpoint) as channel:
        admin = rpc.TernAdminStub(channel)
        try:
            if kind == "topic":
                admin.CreateTopic(pb.CreateTopicRequest(
                    topic=pb.Topic(name=name, queue_count=number or 4)), timeout=10)
            elif kind == "group":
                admin.CreateGroup(pb.CreateGroupRequest(
                    group=pb.Group(name=name, max_retries=number)), timeout=10)
            else:
                raise SystemExit(f"unknown kind {kind!r}: topic or group")
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise SystemExit(f"creating {kind} {name}: {err.code().name} {err.details()}")
    print(f"{kind} {name} ready")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    create(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 0)
