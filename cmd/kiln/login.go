//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/store"
)

// registryConfigured is set once the process's registry client is made:
// a command that opens the store twice must not swap it under running
// transfers.
var registryConfigured sync.Once

// useRegistryConfig makes every pull and push of this process use the
// store's config.json "registry" section and --insecure-registry.
func (g *globalFlags) useRegistryConfig(cf *store.Config) error {
	var err error
	registryConfigured.Do(func() {
		var rc store.RegistryConfig
		if rc, err = cf.Registry(); err == nil {
			registry.SetDefault(registry.Config{Insecure: append(rc.Insecure, g.insecure...), Mirrors: rc.Mirrors})
		}
	})
	return err
}

// registryClient is the configured client for commands that need no store
// (login): the store's config is read only if the store exists.
func (g *globalFlags) registryClient() (*registry.Client, error) {
	if _, err := os.Stat(g.root); err == nil {
		s, err := store.Open(g.root)
		if err != nil {
			return nil, err
		}
		if err := g.useRegistryConfig(s.Config()); err != nil {
			return nil, err
		}
		return registry.Default, nil
	}
	registryConfigured.Do(func() { registry.SetDefault(registry.Config{Insecure: g.insecure}) })
	return registry.Default, nil
}

func newLoginCmd(g *globalFlags) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [-u USER] [-p PASSWORD | --password-stdin] [HOST]",
		Short: "Log in to a registry (credentials go where docker login puts them)",
		Long: "Checks the credentials against the registry, then stores them in $DOCKER_CONFIG/config.json " +
			"(default ~/.docker/config.json), or in its credsStore/credHelpers helper if it names one. HOST defaults to docker.io.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			}
			in := bufio.NewReader(os.Stdin)
			switch {
			case passwordStdin && password != "":
				return errors.New("--password and --password-stdin are mutually exclusive")
			case passwordStdin:
				if user == "" {
					return errors.New("--password-stdin needs --username")
				}
				b, err := io.ReadAll(in)
				if err != nil {
					return fmt.Errorf("reading the password from stdin: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			case password != "":
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			if user == "" || password == "" {
				if !isTerminal(os.Stdin) {
					return errors.New("cannot ask for credentials: stdin is not a terminal; give --username and --password-stdin")
				}
				var err error
				if user == "" {
					fmt.Fprintf(os.Stderr, "Username: ")
					if user, err = in.ReadString('\n'); err != nil {
						return fmt.Errorf("reading the username: %w", err)
					}
					user = strings.TrimSpace(user)
				}
				if password == "" {
					if password, err = readPassword(in); err != nil {
						return err
					}
				}
			}
			c, err := g.registryClient()
			if err != nil {
				return err
			}
			path, err := c.Login(cmd.Context(), host, user, password)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "credentials for %s saved in %s\n", host, path)
			fmt.Println("Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (visible to other users: prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

// readPassword asks for a password on the terminal without echoing it.
func readPassword(in *bufio.Reader) (string, error) {
	fmt.Fprintf(os.Stderr, "Password: ")
	fd := int(os.Stdin.Fd())
	if old, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		noEcho := *old
		noEcho.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err == nil {
			defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
		}
	}
	p, err := in.ReadString('\n')
	fmt.Fprintln(os.Stderr)
	if err != nil && p == "" {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(p, "\r\n"), nil
}

func newLogoutCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [HOST]",
		Short: "Remove a registry's credentials (from where docker login puts them)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = args[0]
			}
			found, err := registry.Logout(cmd.Context(), host)
			if err != nil {
				return err
			}
			if !found {
				fmt.Printf("Not logged in to %s\n", host)
				return nil
			}
			fmt.Printf("Removing login credentials for %s\n", host)
			return nil
		},
	}
}
