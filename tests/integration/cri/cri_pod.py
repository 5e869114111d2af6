#!/usr/bin/python3
"""A minimal kubelet stand-in for the CRI integration test (crictl is not packaged in Debian 12):
starts, stops and removes pod sandboxes through a runtime's CRI socket (runtime.v1).

  cri_pod.py SOCKET run NAME NAMESPACE UID [KEY=VALUE...]   prints the pod sandbox id
  cri_pod.py SOCKET stop ID
  cri_pod.py SOCKET remove ID

The messages come from cri_pods.proto beside this file, compiled with protoc at start-up into a
temporary directory. Exit 0 on success; 1 with the runtime's status and message otherwise.
"""
import importlib
import os
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = "/runtime.v1.RuntimeService/"


def load_messages():
    out = tempfile.mkdtemp(prefix="faultline-cri-py.")
    subprocess.run(["protoc", f"--proto_path={HERE}", f"--python_out={out}", "cri_pods.proto"],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("cri_pods_pb2")


def call(channel, method, request, response_type):
    stub = channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_type.FromString)
    return stub(request, timeout=60)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    socket, verb = argv[1], argv[2]
    pb = load_messages()
    channel = grpc.insecure_channel("unix://" + socket)
    try:
        if verb == "run" and len(argv) >= 6:
            name, namespace, uid = argv[3], argv[4], argv[5]
            config = pb.PodSandboxConfig()
            config.metadata.name, config.metadata.namespace, config.metadata.uid = name, namespace, uid
            config.hostname = name
            for kv in argv[6:]:
                key, _, value = kv.partition("=")
                config.labels[key] = value
            config.linux.security_context.namespace_options.network = 0  # POD: a netns of its own
            resp = call(channel, "RunPodSandbox", pb.RunPodSandboxRequest(config=config),
                        pb.RunPodSandboxResponse)
            print(resp.pod_sandbox_id)
        elif verb == "stop":
            call(channel, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=argv[3]),
                 pb.StopPodSandboxResponse)
        elif verb == "remove":
            call(channel, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=argv[3]),
                 pb.RemovePodSandboxResponse)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except grpc.RpcError as e:
        print(f"cri_pod.py: {verb}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
