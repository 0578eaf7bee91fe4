// Package testregistry starts real registries for tests: Debian's
// docker-registry (the CNCF distribution server) on a loopback port, with
// htpasswd auth and TLS from a CA the test makes when asked, and a
// loopback fault proxy that answers 500 and 429, resets connections and
// stalls in front of any registry.
//
//	r := testregistry.Start(t, testregistry.Options{User: "u", Password: "p", TLS: true})
//	// r.Host is 127.0.0.1:PORT; r.CertsDir holds r.Host/ca.crt for KILN_CERTS_D
//	p := testregistry.StartProxy(t, r)
//	p.Add(testregistry.Rule{Path: "/blobs/", Status: 500, Times: 2})
//
// A test skips (with the reason) when docker-registry or htpasswd is
// missing; everything started is stopped by t.Cleanup.
package testregistry
