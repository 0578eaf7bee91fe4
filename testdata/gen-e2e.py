# Writes the conformance cases under testdata/e2e (run: python3 testdata/gen-e2e.py).
# Each case: a Dockerfile, its context files and expect.json, written from the
# Dockerfile reference and BuildKit's documented behaviour.
import json, os, io, tarfile, sys
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e")
H = "ARG BASE\nFROM $BASE\n"
cases = []
def case(name, dockerfile, expect=None, files=None, binfiles=None, symlinks=None):
    cases.append((name, dockerfile, expect or {}, files or {}, binfiles or {}, symlinks or {}))
def f(content=None, **kw):
    d = dict(kw)
    if content is not None: d["content"] = content
    return d
PATHS = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- FROM and stages
case("from-scratch", "ARG BASE\nFROM scratch\nCOPY a.txt /a.txt\n",
     {"files": {"/a.txt": f("A\n", uid=0, gid=0)}, "layers": 1, "config": {"env": [PATHS]}}, {"a.txt": "A\n"})
case("stage-by-index", H + "RUN echo zero > /zero\nFROM $BASE\nCOPY --from=0 /zero /copied\n",
     {"files": {"/copied": f("zero\n"), "/zero": {"absent": True}}})
case("stage-name-any-case", "ARG BASE\nFROM $BASE AS Builder\nRUN echo b > /b\nFROM $BASE\nCOPY --from=builder /b /b\n",
     {"files": {"/b": f("b\n")}})
case("from-earlier-stage", "ARG BASE\nFROM $BASE AS base\nRUN echo b > /b\nFROM base\nRUN cat /b /b > /c\n",
     {"files": {"/c": f("b\nb\n"), "/b": f("b\n")}})
case("target-stage", "ARG BASE\nFROM $BASE AS build\nRUN echo built > /out\nFROM $BASE\nRUN exit 1\n",
     {"args": ["--target", "build"], "files": {"/out": f("built\n")}})
case("unused-stage-not-built", "ARG BASE\nFROM $BASE AS broken\nRUN exit 1\nFROM $BASE\nRUN echo ok > /ok\n",
     {"files": {"/ok": f("ok\n")}})
case("stage-used-twice", "ARG BASE\nFROM $BASE AS gen\nRUN echo g > /g\nFROM $BASE\nCOPY --from=gen /g /one\nCOPY --from=gen /g /two\n",
     {"files": {"/one": f("g\n"), "/two": f("g\n")}})
case("from-buildplatform", "ARG BASE\nFROM --platform=$BUILDPLATFORM $BASE\nRUN echo ok > /ok\n",
     {"files": {"/ok": f("ok\n")}})

# --- ARG
case("arg-global-only-in-from", "ARG BASE\nARG X=global\nFROM $BASE\nRUN echo \"x=$X\" > /x\n",
     {"files": {"/x": f("x=\n")}})
case("arg-global-redeclared", "ARG BASE\nARG X=global\nFROM $BASE\nARG X\nRUN echo \"x=$X\" > /x\n",
     {"files": {"/x": f("x=global\n")}})
case("arg-default", H + "ARG V=default\nRUN echo $V > /v\n", {"files": {"/v": f("default\n")}})
case("arg-build-arg-overrides", H + "ARG V=default\nRUN echo $V > /v\n",
     {"args": ["--build-arg", "V=cli"], "files": {"/v": f("cli\n")}})
case("arg-not-in-config", H + "ARG TOKENISH=abc\nRUN echo $TOKENISH > /t\n",
     {"files": {"/t": f("abc\n")}, "config": {"envAbsent": ["TOKENISH"]}})
case("env-wins-over-arg", H + "ARG V=arg\nENV V=env\nRUN echo $V > /v\n",
     {"args": ["--build-arg", "V=cli"], "files": {"/v": f("env\n")}, "config": {"env": ["V=env"]}})
case("arg-into-env", H + "ARG V=1\nENV W=${V}x\n", {"config": {"env": ["W=1x"]}})
case("arg-scope-ends-with-stage", "ARG BASE\nFROM $BASE AS a\nARG V=1\nFROM $BASE\nRUN echo \"[$V]\" > /v\n",
     {"files": {"/v": f("[]\n")}})
case("arg-platform-automatic", H + "ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nRUN echo $TARGETPLATFORM $TARGETOS $TARGETARCH > /p\n",
     {"files": {"/p": f("linux/amd64 linux amd64\n")}})
case("arg-platform-needs-declaring", H + "RUN echo \"[$TARGETARCH]\" > /p\n", {"files": {"/p": f("[]\n")}})
case("arg-in-from", "ARG BASE\nARG TAG=unused\nFROM ${BASE}\nRUN true\n", {"layers": 2})

# --- ENV
case("env-forms", H + "ENV A=1 B=\"two words\"\nENV C 3\n",
     {"config": {"env": ["A=1", "B=two words", "C=3"]}})
case("env-same-line-sees-old-value", H + "ENV A=1\nENV A=2 B=$A\n", {"config": {"env": ["A=2", "B=1"]}})
case("env-in-run", H + "ENV GREET=hi\nRUN echo $GREET > /g\n", {"files": {"/g": f("hi\n")}})
case("env-path-extended", H + "ENV PATH=/custom:$PATH\n", {"config": {"env": ["PATH=/custom:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}})
case("env-empty-layer", H + "ENV A=1\nLABEL l=1\nRUN true\n", {"emptyLayer": [True, True, False]})

# --- substitution
case("subst-default", H + "ENV A=${UNSET:-def} B=${UNSET-def2}\n", {"config": {"env": ["A=def", "B=def2"]}})
case("subst-empty-vs-unset", H + "ENV E=\nENV A=${E:-d} B=${E-d}\n", {"config": {"env": ["A=d", "B="]}})
case("subst-alternative", H + "ENV S=x\nENV A=${S:+alt} B=${UNSET:+alt} C=${S+set}\n", {"config": {"env": ["A=alt", "B=", "C=set"]}})
case("subst-prefix-suffix", H + "ENV F=archive.tar.gz\nENV A=${F#*.} B=${F##*.} C=${F%.*} D=${F%%.*}\n",
     {"config": {"env": ["A=tar.gz", "B=gz", "C=archive.tar", "D=archive"]}})
case("subst-replace", H + "ENV P=a-b-c\nENV A=${P/-/_} B=${P//-/_}\n", {"config": {"env": ["A=a_b-c", "B=a_b_c"]}})
case("subst-required", H + "ENV A=\"${UNSET:?must be set}\"\n", {"fail": "must be set"})
case("subst-escapes-and-quotes", H + "ENV A=\\$HOME B='$HOME' C=\"$UNSET-x\"\n", {"config": {"env": ["A=$HOME", "B=$HOME", "C=-x"]}})
case("subst-in-workdir", H + "ENV D=/opt/app\nWORKDIR $D/sub\n", {"config": {"workingDir": "/opt/app/sub"}, "files": {"/opt/app/sub": {"type": "dir"}}})
case("subst-in-label", H + "ARG V=3\nLABEL version=$V name=\"n ${V}\"\n", {"config": {"labels": {"version": "3", "name": "n 3"}}})
case("subst-in-copy-dest", H + "ARG DEST=/dst\nCOPY a.txt ${DEST}/\n", {"files": {"/dst/a.txt": f("A\n")}}, {"a.txt": "A\n"})
case("subst-braces-in-run-left-to-shell", H + "ENV N=env\nRUN echo '${N}' \"${N}\" > /r\n", {"files": {"/r": f("${N} env\n")}})

# --- WORKDIR
case("workdir-relative-chain", H + "WORKDIR /a\nWORKDIR b\nWORKDIR c\nRUN pwd > /pwd\n",
     {"config": {"workingDir": "/a/b/c"}, "files": {"/pwd": f("/a/b/c\n"), "/a/b/c": {"type": "dir"}}})
case("workdir-owned-by-user", H + "USER user\nWORKDIR /data\n", {"files": {"/data": {"type": "dir", "uid": 1000, "gid": 1000}}})
case("workdir-root-no-layer", H + "WORKDIR /\nRUN true\n", {"layers": 2, "emptyLayer": [True, False]})

# --- COPY
ctx = {"a.txt": "A\n", "b.txt": "B\n", "dir/x": "X\n", "dir/sub/y": "Y\n", "c.md": "C\n"}
case("copy-file-to-file", H + "COPY a.txt /renamed.txt\n", {"files": {"/renamed.txt": f("A\n", mode="0644", uid=0, gid=0)}}, ctx)
case("copy-file-to-dir-slash", H + "COPY a.txt /d/\n", {"files": {"/d/a.txt": f("A\n"), "/d": {"type": "dir"}}}, ctx)
case("copy-file-into-existing-dir", H + "COPY a.txt /tmp\n", {"files": {"/tmp/a.txt": f("A\n"), "/tmp": {"type": "dir", "mode": "1777"}}}, ctx)
case("copy-dir-contents", H + "COPY dir /out/\n", {"files": {"/out/x": f("X\n"), "/out/sub/y": f("Y\n"), "/out/dir": {"absent": True}}}, ctx)
case("copy-dir-no-slash", H + "COPY dir /out\n", {"files": {"/out/x": f("X\n"), "/out/sub/y": f("Y\n")}}, ctx)
case("copy-wildcard", H + "COPY *.txt /w/\n", {"files": {"/w/a.txt": f("A\n"), "/w/b.txt": f("B\n"), "/w/c.md": {"absent": True}}}, ctx)
case("copy-wildcard-question", H + "COPY ?.txt /w/\n", {"files": {"/w/a.txt": f("A\n"), "/w/b.txt": f("B\n")}}, ctx)
case("copy-wildcard-no-match-ok", H + "COPY a.txt nomatch* /w/\n", {"files": {"/w/a.txt": f("A\n")}}, ctx)
case("copy-missing-source", H + "COPY missing.txt /\n", {"fail": "missing.txt"}, ctx)
case("copy-multiple-sources", H + "COPY a.txt b.txt /m/\n", {"files": {"/m/a.txt": f("A\n"), "/m/b.txt": f("B\n")}}, ctx)
case("copy-chown-numeric", H + "COPY --chown=1000:1000 a.txt /o\n", {"files": {"/o": f("A\n", uid=1000, gid=1000)}}, ctx)
case("copy-chown-name", H + "COPY --chown=user a.txt /o\n", {"files": {"/o": f("A\n", uid=1000, gid=1000)}}, ctx)
case("copy-chown-uid-only", H + "COPY --chown=1234 a.txt /o\n", {"files": {"/o": f("A\n", uid=1234, gid=1234)}}, ctx)
case("copy-chown-user-group-names", H + "COPY --chown=user:root a.txt /o\n", {"files": {"/o": f("A\n", uid=1000, gid=0)}}, ctx)
case("copy-chown-unknown-user", H + "COPY --chown=nosuchuser a.txt /o\n", {"fail": "nosuchuser"}, ctx)
case("copy-chmod-octal", H + "COPY --chmod=0700 a.txt /o\n", {"files": {"/o": f("A\n", mode="0700")}}, ctx)
case("copy-chmod-symbolic", H + "COPY --chmod=u=rwx,g=rx,o= a.txt /o\n", {"files": {"/o": f("A\n", mode="0750")}}, ctx)
case("copy-relative-dest", H + "WORKDIR /app\nCOPY a.txt sub/\nCOPY b.txt .\n", {"files": {"/app/sub/a.txt": f("A\n"), "/app/b.txt": f("B\n")}}, ctx)
case("copy-symlink-kept", H + "COPY . /c/\n", {"files": {"/c/l": {"type": "symlink", "link": "a.txt"}, "/c/a.txt": f("A\n")}}, {"a.txt": "A\n"}, symlinks={"l": "a.txt"})
case("copy-from-stage-keeps-owner", "ARG BASE\nFROM $BASE AS s\nRUN echo f > /f && chown 1000:1000 /f && chmod 0640 /f\nFROM $BASE\nCOPY --from=s /f /f\n",
     {"files": {"/f": f("f\n", uid=1000, gid=1000, mode="0640")}})
case("copy-dockerignore", H + "COPY . /c/\n", {"files": {"/c/keep.log": f("k\n"), "/c/drop.log": {"absent": True}, "/c/secret": {"absent": True}, "/c/a.txt": f("A\n")}},
     {"a.txt": "A\n", "keep.log": "k\n", "drop.log": "d\n", "secret": "s\n", ".dockerignore": "*.log\n!keep.log\nsecret\n"})
case("copy-dockerfile-dockerignore-wins", H + "COPY . /c/\n", {"files": {"/c/a.txt": {"absent": True}, "/c/b.txt": f("B\n")}},
     {"a.txt": "A\n", "b.txt": "B\n", ".dockerignore": "b.txt\n", "Dockerfile.dockerignore": "a.txt\n"})
case("copy-ignored-source-missing", H + "COPY secret /s\n", {"fail": "secret"}, {"secret": "s\n", ".dockerignore": "secret\n"})
case("copy-dest-parents-created", H + "COPY a.txt /deep/er/path/\n", {"files": {"/deep/er/path/a.txt": f("A\n"), "/deep/er": {"type": "dir", "mode": "0755", "uid": 0}}}, ctx)
case("copy-no-escape", H + "COPY ../../etc/hostname* /x/\nCOPY a.txt /x/\n", {"files": {"/x/a.txt": f("A\n"), "/x/hostname": {"absent": True}}}, ctx)
case("copy-overwrites-file", H + "RUN echo old > /o\nCOPY a.txt /o\n", {"files": {"/o": f("A\n")}}, ctx)
case("copy-heredoc", H + "ARG W=world\nCOPY <<EOF /h.txt\nhello $W\nEOF\nCOPY <<'EOF' /q.txt\nhello $W\nEOF\n", {"files": {"/h.txt": f("hello world\n"), "/q.txt": f("hello $W\n")}})

# --- ADD
tar_buf = io.BytesIO()
with tarfile.open(fileobj=tar_buf, mode="w:gz") as t:
    for name, data, mode, uid in [("app/bin/run", b"#!/bin/sh\necho run\n", 0o755, 0), ("app/etc/conf", b"c=1\n", 0o600, 1000)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.uid = uid; ti.gid = uid; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(data))
tgz = tar_buf.getvalue()
case("add-local-tgz", H + "ADD app.tgz /opt/\n", {"files": {"/opt/app/bin/run": f(mode="0755", uid=0, contains="echo run"), "/opt/app/etc/conf": f("c=1\n", mode="0600", uid=1000, gid=1000)}}, binfiles={"app.tgz": tgz})
case("add-unpack-false", H + "ADD --unpack=false app.tgz /opt/\n", {"files": {"/opt/app.tgz": {"type": "file"}, "/opt/app": {"absent": True}}}, binfiles={"app.tgz": tgz})
case("add-archive-by-content", H + "ADD data.bin /opt/\n", {"files": {"/opt/app/etc/conf": f("c=1\n")}}, binfiles={"data.bin": tgz})
case("add-plain-file", H + "ADD a.txt /opt/\n", {"files": {"/opt/a.txt": f("A\n")}}, ctx)
case("copy-does-not-unpack", H + "COPY app.tgz /opt/\n", {"files": {"/opt/app.tgz": {"type": "file"}, "/opt/app": {"absent": True}}}, binfiles={"app.tgz": tgz})

# --- RUN
case("run-shell-form-home", H + "RUN echo $HOME > /h\n", {"files": {"/h": f("/root\n")}})
case("run-exec-form-no-expansion", H + "RUN [\"/bin/touch\", \"/exec-$HOME\"]\n", {"files": {"/exec-$HOME": {"type": "file"}}})
case("run-shell-instruction", H + "SHELL [\"/bin/sh\", \"-ec\"]\nRUN echo \"$0 $-\" > /s\n",
     {"config": {"shell": ["/bin/sh", "-ec"]}, "files": {"/s": f(contains="e")}})
case("run-exit-code", H + "RUN echo failing; exit 3\n", {"fail": "exit code: 3", "exit": 3})
case("run-whiteout-file", H + "RUN rm /bin/vi\n", {"files": {"/bin/vi": {"absent": True}, "/bin/ls": {"type": "symlink"}}})
case("run-opaque-dir", H + "RUN mkdir /d && echo a > /d/a\nRUN rm -rf /d && mkdir /d && echo b > /d/b\n",
     {"files": {"/d/a": {"absent": True}, "/d/b": f("b\n")}})
case("run-as-user", H + "USER user\nRUN id -u > /tmp/u && id -g >> /tmp/u\n", {"files": {"/tmp/u": f("1000\n1000\n", uid=1000)}})
case("run-user-uid-gid", H + "USER 1000:0\nRUN id -u > /tmp/u && id -g >> /tmp/u\n", {"files": {"/tmp/u": f("1000\n0\n")}})
case("run-workdir-is-cwd", H + "WORKDIR /w\nRUN pwd > /pwd\n", {"files": {"/pwd": f("/w\n")}})
case("run-sees-arg", H + "ARG A=1\nRUN echo $A > /a\n", {"files": {"/a": f("1\n")}})
case("run-network-none", H + "RUN --network=none sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"' > /ifs\n", {"files": {"/ifs": f("lo\n")}})
case("run-heredoc", H + "RUN <<EOF\necho one > /one\necho two > /two\nEOF\n", {"files": {"/one": f("one\n"), "/two": f("two\n")}})
case("run-heredoc-shebang", H + "RUN <<EOF\n#!/bin/sh\necho \"$0\" > /script\nEOF\n", {"files": {"/script": f("/dev/pipes/EOF\n")}})
case("run-mount-tmpfs", H + "RUN --mount=type=tmpfs,target=/t touch /t/x && ls /t > /seen\n", {"files": {"/seen": f("x\n"), "/t/x": {"absent": True}}})
case("run-mount-bind-stage", "ARG BASE\nFROM $BASE AS tools\nRUN echo v1 > /ver\nFROM $BASE\nRUN --mount=from=tools,target=/tools cat /tools/ver > /v\n",
     {"files": {"/v": f("v1\n"), "/tools/ver": {"absent": True}}})
case("run-mount-bind-context", H + "RUN --mount=target=/ctx cat /ctx/a.txt > /a\n", {"files": {"/a": f("A\n"), "/ctx/a.txt": {"absent": True}}}, ctx)
case("run-mount-cache", H + "RUN --mount=type=cache,target=/var/cache/x echo c > /var/cache/x/c && cat /var/cache/x/c > /seen\n",
     {"files": {"/seen": f("c\n"), "/var/cache/x/c": {"absent": True}}})

# --- CMD / ENTRYPOINT
case("cmd-shell-form", H + "CMD echo hi\n", {"config": {"cmd": ["/bin/sh", "-c", "echo hi"]}, "run": {"stdout": "hi\n"}})
case("cmd-exec-form", H + "CMD [\"echo\", \"a\", \"b\"]\n", {"config": {"cmd": ["echo", "a", "b"]}, "run": {"stdout": "a b\n"}})
case("cmd-inherited-from-base", H + "RUN true\n", {"config": {"cmd": ["sh"]}})
case("cmd-last-wins", H + "CMD [\"echo\", \"a\"]\nCMD [\"echo\", \"b\"]\n", {"config": {"cmd": ["echo", "b"]}})
case("entrypoint-and-cmd", H + "ENTRYPOINT [\"echo\", \"e\"]\nCMD [\"c\"]\n", {"config": {"entrypoint": ["echo", "e"], "cmd": ["c"]}, "run": {"stdout": "e c\n"}})
case("entrypoint-resets-inherited-cmd", H + "ENTRYPOINT [\"echo\", \"only\"]\n", {"config": {"entrypoint": ["echo", "only"], "cmd": []}, "run": {"stdout": "only\n"}})
case("entrypoint-shell-form-ignores-cmd", H + "ENTRYPOINT echo shell-form\nCMD [\"ignored\"]\n",
     {"config": {"entrypoint": ["/bin/sh", "-c", "echo shell-form"]}, "run": {"stdout": "shell-form\n"}})
case("cmd-args-replace-at-run", H + "ENTRYPOINT [\"echo\"]\nCMD [\"default\"]\n", {"run": {"args": ["given"], "stdout": "given\n"}})

# --- metadata
case("label-multi-and-override", H + "LABEL a=1 b=\"two words\"\nLABEL a=3\n", {"config": {"labels": {"a": "3", "b": "two words"}}})
case("label-inherited-from-stage", "ARG BASE\nFROM $BASE AS p\nLABEL x=1\nFROM p\nLABEL y=2\n", {"config": {"labels": {"x": "1", "y": "2"}}})
case("expose-normalized", H + "EXPOSE 80 443/tcp 53/udp\n", {"config": {"exposedPorts": ["443/tcp", "53/udp", "80/tcp"]}})
case("volume-forms", H + "VOLUME /data\nVOLUME [\"/a\", \"/b\"]\n", {"config": {"volumes": ["/a", "/b", "/data"]}})
case("user-config", H + "USER user:user\n", {"config": {"user": "user:user"}})
case("stopsignal-name", H + "STOPSIGNAL SIGTERM\n", {"config": {"stopSignal": "SIGTERM"}})
case("stopsignal-number", H + "STOPSIGNAL 9\n", {"config": {"stopSignal": "9"}})
case("stopsignal-invalid", H + "STOPSIGNAL SIGFOO\n", {"fail": "SIGFOO"})
case("healthcheck-options", H + "HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true\n",
     {"config": {"healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000, "Timeout": 2000000000, "Retries": 4}}})
case("healthcheck-exec", H + "HEALTHCHECK CMD [\"test\", \"-f\", \"/x\"]\n", {"config": {"healthcheck": {"Test": ["CMD", "test", "-f", "/x"]}}})
case("healthcheck-none", H + "HEALTHCHECK NONE\n", {"config": {"healthcheck": {"Test": ["NONE"]}}})
case("onbuild-stored", H + "ONBUILD RUN echo hi\n", {"config": {"onBuild": ["RUN echo hi"]}})
case("onbuild-runs-in-child-stage", "ARG BASE\nFROM $BASE AS p\nONBUILD RUN echo triggered > /t\nFROM p\nRUN cat /t > /seen\n",
     {"files": {"/seen": f("triggered\n")}, "config": {"onBuild": []}})
case("layers-and-history", H + "RUN echo 1 > /1\nCOPY a.txt /a\nENV E=1\nWORKDIR /w\nCMD [\"sh\"]\n",
     {"layers": 4, "emptyLayer": [False, False, True, False, True]}, ctx)

# --- errors
case("err-unknown-instruction", H + "RUNN echo\n", {"fail": "Dockerfile:3"})
case("err-unknown-instruction-suggests", H + "COPPY a b\n", {"fail": "COPY"})
case("err-unknown-flag", H + "COPY --nope a.txt /\n", {"fail": "nope"}, ctx)
case("err-bad-substitution", H + "ENV A=${}\n", {"fail": "bad substitution"})
case("err-from-variable", H + "ARG S=x\nCOPY --from=$S /a /a\n", {"fail": "--from"})
case("err-circular-stage", "ARG BASE\nFROM $BASE AS a\nCOPY --from=a /x /x\n", {"fail": "circular"})
case("err-target-missing", H + "RUN true\n", {"args": ["--target", "nosuch"], "fail": "nosuch"})

def write():
    os.makedirs(ROOT, exist_ok=True)
    n = 0
    for i, (name, df, exp, files, binfiles, links) in enumerate(cases):
        d = os.path.join(ROOT, "%03d-%s" % (i + 1, name))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "Dockerfile"), "w") as fh: fh.write(df)
        for p, c in files.items():
            fp = os.path.join(d, p); os.makedirs(os.path.dirname(fp), exist_ok=True)
            with open(fp, "w") as fh: fh.write(c)
        for p, c in binfiles.items():
            with open(os.path.join(d, p), "wb") as fh: fh.write(c)
        for p, t in links.items():
            lp = os.path.join(d, p)
            if os.path.lexists(lp): os.remove(lp)
            os.symlink(t, lp)
        with open(os.path.join(d, "expect.json"), "w") as fh: json.dump(exp, fh, indent=1, sort_keys=True); fh.write("\n")
        n += 1
    print(n, "cases")
write()
