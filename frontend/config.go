package frontend

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// healthConfig builds the config's Healthcheck. go-containerregistry's type
// has no StartInterval: that travels in Result.HealthStartInterval.
func healthConfig(test []string, interval, timeout, startPeriod time.Duration, retries int) *v1.HealthConfig {
	return &v1.HealthConfig{
		Test:        append([]string(nil), test...),
		Interval:    interval,
		Timeout:     timeout,
		StartPeriod: startPeriod,
		Retries:     retries,
	}
}

// parsePort turns one EXPOSE word, "[ip:][hostport:]port[-end][/proto]",
// into "port/proto" entries, as BuildKit does.
func parsePort(raw string) ([]string, error) {
	ip, hostPort, containerPort := splitPortParts(raw)
	port, proto, _ := strings.Cut(containerPort, "/")
	if port == "" {
		return nil, fmt.Errorf("invalid port: %q: no port specified", raw)
	}
	switch strings.ToLower(proto) {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid port: %q: invalid proto: %s", raw, proto)
	}
	if strings.HasPrefix(ip, "[") {
		h, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = h
	}
	if ip != "" && net.ParseIP(ip) == nil {
		return nil, errors.New("invalid IP address: " + ip)
	}
	start, end, err := parsePortRange(port)
	if err != nil {
		return nil, errors.New("invalid containerPort: " + port)
	}
	if hostPort != "" {
		hs, he, err := parsePortRange(hostPort)
		if err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != he-hs && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", port, hostPort)
		}
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, strconv.Itoa(p)+"/"+strings.ToLower(proto))
	}
	return out, nil
}

func splitPortParts(raw string) (ip, hostPort, containerPort string) {
	parts := strings.Split(raw, ":")
	n := len(parts)
	switch n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

func parsePortRange(s string) (int, int, error) {
	if s == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	a, b, ok := strings.Cut(s, "-")
	start, err := parsePortNumber(a)
	if err != nil {
		return 0, 0, err
	}
	if !ok || a == b {
		return start, start, nil
	}
	end, err := parsePortNumber(b)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, errors.New("invalid port range: " + s)
	}
	return start, end, nil
}

func parsePortNumber(s string) (int, error) {
	p, err := strconv.ParseInt(s, 10, 0)
	if err != nil {
		return 0, err
	}
	if p < 0 || p > 65535 {
		return 0, errors.New("value out of range (0–65535)")
	}
	return int(p), nil
}

// checkSignal accepts what moby's signal.ParseSignal accepts on Linux: a
// non-zero number, or a signal name with or without "SIG".
func checkSignal(raw string) error {
	if n, err := strconv.Atoi(raw); err == nil {
		if n == 0 {
			return fmt.Errorf("invalid signal: %s", raw)
		}
		return nil
	}
	if _, ok := linuxSignals[strings.TrimPrefix(strings.ToUpper(raw), "SIG")]; !ok {
		return fmt.Errorf("invalid signal: %s", raw)
	}
	return nil
}

var linuxSignals = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, s := range strings.Fields(`ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR
		QUIT SEGV STKFLT STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ RTMIN RTMAX`) {
		m[s] = struct{}{}
	}
	for i := 1; i <= 15; i++ {
		m["RTMIN+"+strconv.Itoa(i)] = struct{}{}
		m["RTMAX-"+strconv.Itoa(i)] = struct{}{}
	}
	return m
}()
