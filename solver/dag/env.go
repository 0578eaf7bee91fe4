package dag

import "strings"

// RunEnv is the environment a RUN step's process gets, in this order (the
// order BuildKit gives, which `env` in a RUN shows):
//   - op.Env: the stage's ENV and ARGs, in the order they were last set;
//   - SSH_AUTH_SOCK, the first ssh mount's target, unless op.Env sets it;
//   - op.ProxyEnv: the undeclared proxy build args (kept out of the key);
//   - secretEnv: the env= values of its secret mounts (out of the key).
//
// The executor then adds HOME, the user's home in the rootfs, unless the
// env sets it (executor.Process): only it reads the rootfs's passwd.
func RunEnv(op *ExecOp, secretEnv []string) []string {
	env := make([]string, 0, len(op.Env)+1+len(op.ProxyEnv)+len(secretEnv))
	env = append(env, op.Env...)
	if sock := sshAuthSock(op); sock != "" {
		env = append(env, "SSH_AUTH_SOCK="+sock)
	}
	env = append(env, op.ProxyEnv...)
	return append(env, secretEnv...)
}

// sshAuthSock is the agent socket a RUN with ssh mounts is told of, or "".
func sshAuthSock(op *ExecOp) string {
	for _, e := range op.Env {
		if strings.HasPrefix(e, "SSH_AUTH_SOCK=") {
			return ""
		}
	}
	for _, m := range op.Mounts {
		if m.Type == "ssh" {
			return m.Target
		}
	}
	return ""
}
