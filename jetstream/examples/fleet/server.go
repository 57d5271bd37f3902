package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// serverReady bounds how long the embedded server may take to start.
const serverReady = 10 * time.Second

// storePrefix starts the name of the embedded server's store directory,
// followed by the parent's pid: bpfchan-fleet-store-<pid>-<random>.
const storePrefix = "bpfchan-fleet-store-"

// embedded is a JetStream server run inside the parent, on a loopback port
// the kernel picks (the agents are other processes), with its file store
// in a temporary directory.
type embedded struct {
	s     *server.Server
	store string
	// Stale lists the stores of earlier runs whose parent is gone, which
	// startServer removed.
	Stale []string
}

// startServer starts an embedded JetStream server.
func startServer() (*embedded, error) {
	stale := removeStale(os.TempDir(), storePrefix)
	store, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", storePrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("make the server's store: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		JetStream: true,
		StoreDir:  store,
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		os.RemoveAll(store)
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	e := &embedded{s: s, store: store, Stale: stale}
	go s.Start() // returns once the server runs; Shutdown stops what it started
	if !s.ReadyForConnections(serverReady) {
		e.shutdown()
		return nil, fmt.Errorf("embedded server: not ready for connections after %s", serverReady)
	}
	return e, nil
}

// URL is the server's client URL.
func (e *embedded) URL() string { return e.s.ClientURL() }

// shutdown stops the server, waits until it has, and removes its store.
func (e *embedded) shutdown() error {
	e.s.Shutdown()
	e.s.WaitForShutdown()
	if err := os.RemoveAll(e.store); err != nil {
		return errors.New("remove the server's store: " + err.Error())
	}
	return nil
}
