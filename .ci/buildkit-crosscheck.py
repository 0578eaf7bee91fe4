#!/usr/bin/env python3
"""Builds conformance cases with BuildKit and with kiln and compares them.

    python3 .ci/buildkit-crosscheck.py testdata/e2e/* testdata/differential/*

Needs ../shared/peers/setup.sh to have run (buildkitd on
/run/peers/buildkitd.sock, a registry on 127.0.0.1:5000) and bin/kiln. The
base image is kiln's test busybox (bin/kiln-busybox), pushed to that registry
as kilnbb:latest by this script. For a case whose expect.json says the build
must fail, BuildKit must fail too; for the others both results are exported
as tar files and their whole trees compared: path, type, permission bits,
uid, gid, sha256 of the content, link target; with --config first, also
the image configs (Env, Cmd, Entrypoint, User, WorkingDir, Labels, ports,
volumes, StopSignal, Healthcheck, OnBuild, Shell), the layer count and the
history (created_by, empty_layer). Not part of `make test`: it
needs a BuildKit daemon, which the tests must not depend on.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDCTL = os.environ.get("BUILDCTL", "/opt/peers/bin/buildctl")
SOCK = os.environ.get("BUILDKIT_HOST", "unix:///run/peers/buildkitd.sock")
KILN = os.path.join(REPO, "bin", "kiln")
BASE = "127.0.0.1:5000/kilnbb:latest"
WORK = tempfile.mkdtemp(prefix="crosscheck-")


def push_base():
    root = os.path.join(WORK, "store")
    env = dict(os.environ, KILN_ROOT=root)
    tar = os.path.join(WORK, "bb.tar")
    subprocess.run([os.path.join(REPO, "bin", "kiln-busybox"), "-o", tar], check=True, capture_output=True)
    subprocess.run([KILN, "load", "-i", tar], check=True, capture_output=True, env=env)
    ctx = os.path.join(WORK, "base")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox:latest\n")
    subprocess.run([KILN, "build", "-q", "-o", "type=registry,name=" + BASE, ctx], check=True, capture_output=True, env=env)


def tree(path):
    t = tarfile.open(path)
    out = {}
    for m in t.getmembers():
        name = "/" + m.name.lstrip("./").rstrip("/")
        if name == "/" or name.startswith(("/proc/", "/sys/", "/dev/")):
            continue
        kind = "dir" if m.isdir() else "symlink" if m.issym() else "hardlink" if m.islnk() else "file" if m.isfile() else "other"
        e = {"type": kind, "mode": "%04o" % (m.mode & 0o7777), "uid": m.uid, "gid": m.gid}
        if m.isfile():
            e["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()[:16]
        if m.issym() or m.islnk():
            e["link"] = m.linkname
        out[name] = e
    return out


def oci_config(path):
    """The config and history of the image in an OCI archive."""
    t = tarfile.open(path)
    blob = lambda d: json.load(t.extractfile("blobs/sha256/" + d.split(":", 1)[1]))
    index = json.load(t.extractfile("index.json"))
    manifest = blob(index["manifests"][0]["digest"])
    cfg = blob(manifest["config"]["digest"])
    c = cfg.get("config", {})
    keep = {k: c.get(k) for k in ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "Labels", "ExposedPorts",
                                 "Volumes", "StopSignal", "Healthcheck", "OnBuild", "Shell")}
    keep = {k: v for k, v in keep.items() if v not in (None, "", [], {})}
    keep["layers"] = len(manifest["layers"])
    keep["history"] = [(h.get("created_by", ""), bool(h.get("empty_layer"))) for h in cfg.get("history", [])]
    return keep


def flags(args):
    """expect.json's kiln flags as (buildctl flags, kiln flags), or None."""
    bk, kl, i = [], [], 0
    while i < len(args):
        k, v = args[i], args[i + 1] if i + 1 < len(args) else ""
        if k == "--build-arg":
            bk += ["--opt", "build-arg:" + v]
        elif k == "--target":
            bk += ["--opt", "target=" + v]
        elif k == "--secret":
            v = v.replace("src=../../", "src=" + REPO + "/")
            bk += ["--secret", v]
        else:
            return None
        kl += [k, v]
        i += 2
    return bk, kl


def last(s):
    lines = s.strip().splitlines()
    return lines[-1][:160] if lines else ""


def check(case):
    name = os.path.basename(case.rstrip("/"))
    x = {}
    if os.path.exists(os.path.join(case, "expect.json")):
        with open(os.path.join(case, "expect.json")) as f:
            x = json.load(f)
    fl = flags(x.get("args", []))
    if fl is None:
        return name, "skip", "flags " + " ".join(x.get("args", []))
    ctx = os.path.join(WORK, name)
    shutil.copytree(case, ctx)
    if os.path.exists(os.path.join(ctx, "expect.json")):
        os.remove(os.path.join(ctx, "expect.json"))
    bk_tar, kl_tar = ctx + ".buildkit.tar", ctx + ".kiln.tar"
    bk = subprocess.run([BUILDCTL, "--addr", SOCK, "build", "--frontend", "dockerfile.v0", "--local", "context=" + ctx,
                         "--local", "dockerfile=" + ctx, "--opt", "build-arg:BASE=" + BASE] + fl[0] +
                        ["--output", "type=tar,dest=" + bk_tar], capture_output=True, text=True)
    if x.get("fail"):
        return name, ("same" if bk.returncode else "DIFFERENT"), "both fail" if bk.returncode else "BuildKit builds it"
    kl = subprocess.run([KILN, "build", "-q", "--build-arg", "BASE=" + BASE] + fl[1] + ["--output", "type=tar,dest=" + kl_tar, ctx],
                        capture_output=True, text=True, env=dict(os.environ, KILN_ROOT=os.path.join(WORK, "store")))
    if bk.returncode and "registry-1.docker.io" in bk.stderr:
        return name, "skip", "BuildKit needs the internet (a frontend image): " + last(bk.stderr)
    if bk.returncode or kl.returncode:
        return name, "DIFFERENT", "buildkit exit %d (%s), kiln exit %d (%s)" % (bk.returncode, last(bk.stderr), kl.returncode, last(kl.stderr))
    a, b = tree(bk_tar), tree(kl_tar)
    diffs = ["%s: buildkit %s, kiln %s" % (p, a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]
    if CONFIG:
        bk = subprocess.run([BUILDCTL, "--addr", SOCK, "build", "--frontend", "dockerfile.v0", "--local", "context=" + ctx,
                             "--local", "dockerfile=" + ctx, "--opt", "build-arg:BASE=" + BASE] + fl[0] +
                            ["--output", "type=oci,dest=" + bk_tar], capture_output=True, text=True)
        kl = subprocess.run([KILN, "build", "-q", "--build-arg", "BASE=" + BASE] + fl[1] + ["--output", "type=oci,dest=" + kl_tar, ctx],
                            capture_output=True, text=True, env=dict(os.environ, KILN_ROOT=os.path.join(WORK, "store")))
        if bk.returncode or kl.returncode:
            return name, "DIFFERENT", "OCI export: buildkit %s, kiln %s" % (last(bk.stderr), last(kl.stderr))
        ca, cb = oci_config(bk_tar), oci_config(kl_tar)
        # The base's own history entry is not this build's.
        ca["history"], cb["history"] = ca["history"][1:], cb["history"][1:]
        diffs += ["config.%s: buildkit %s, kiln %s" % (k, ca.get(k), cb.get(k)) for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
    if diffs:
        return name, "DIFFERENT", "; ".join(diffs[:8]) + (" (+%d)" % (len(diffs) - 8) if len(diffs) > 8 else "")
    return name, "same", "%d paths" % len(a)


CONFIG = False


def main():
    global CONFIG
    if sys.argv[1:2] == ["--config"]:
        CONFIG = True
        del sys.argv[1]
    push_base()
    counts = {}
    for case in sys.argv[1:]:
        name, result, detail = check(case)
        counts[result] = counts.get(result, 0) + 1
        print("%-50s %-9s %s" % (name, result, detail), flush=True)
    print("totals:", ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(1 if counts.get("DIFFERENT") else 0)


if __name__ == "__main__":
    main()
