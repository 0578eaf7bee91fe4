// Package frontend compiles a Dockerfile into a build graph of solver/dag
// vertices plus the image config the result carries.
//
// It follows BuildKit's Dockerfile frontend (parsing, variable expansion,
// ARG scoping, history, progress names) but runs nothing and does no I/O:
// base images are resolved through the injected ImageResolver. It also
// runs BuildKit's build checks (the linter rules, configured by the check
// directive) and reports their violations as Result.Warnings.
package frontend
