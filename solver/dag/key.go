package dag

import (
	"encoding/json"
	"fmt"

	"github.com/kiln-build/kiln/digest"
)

// A key is a promise: a store that has a result under it holds what the op
// produces today. Two versions keep that promise when the code changes.
// testdata/keys.golden pins the keys of one instance of every op (see
// key_test.go): a change to that file means old keys name new results,
// and one of the versions must be bumped with it.
const (
	// keyVersion covers what an op is: bump it when an Op struct gains,
	// loses or renames a keyed field, when a field's meaning changes, or
	// when the encoding below changes.
	//
	// 2: COPY's metadata rules (an existing destination directory takes
	// the source directory's owner, mode and times) and ADD's archive
	// extraction (later entries replace earlier ones, as BuildKit) changed
	// what version 1's keys produce.
	keyVersion = 2

	// ExecVersion covers what executing an op makes of the same op and
	// inputs: bump it when the executor or fscopy change the filesystem a
	// RUN, COPY, ADD or WORKDIR step produces (copy metadata and
	// ownership rules, archive extraction, what a RUN sees: its
	// environment, mounts, sandbox) without any Op field changing. It is
	// mixed into the keys of ExecOp, CopyOp and MkdirOp only, the ops the
	// executor runs.
	ExecVersion = 1
)

// Key is the cache key of op applied to inputs with the given keys. content
// is the digest of the files the op selects from a LocalOp input, or "".
// Same op + same input keys + same content ⇒ same key.
func Key(op Op, inputs []digest.Digest, content digest.Digest) (digest.Digest, error) {
	return keyAt(keyVersion, ExecVersion, op, inputs, content)
}

// keyAt is Key under the given versions.
func keyAt(version, execVersion int, op Op, inputs []digest.Digest, content digest.Digest) (digest.Digest, error) {
	exec := 0
	switch op.(type) {
	case *ExecOp, *CopyOp, *MkdirOp:
		exec = execVersion
	}
	b, err := json.Marshal(struct {
		Version int             `json:"v"`
		Exec    int             `json:"exec,omitempty"`
		Kind    string          `json:"kind"`
		Op      Op              `json:"op"`
		Inputs  []digest.Digest `json:"inputs"`
		Content digest.Digest   `json:"content,omitempty"`
	}{version, exec, op.Kind(), op, inputs, content})
	if err != nil {
		return "", fmt.Errorf("encoding %s op: %w", op.Kind(), err)
	}
	return digest.FromBytes(b), nil
}
