// A net/http server on the socket preforkd passes as fd 3: prefork mode as Go Fiber
// has it, with preforkd as the master. Standard library only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// listenerFromPreforkd takes fd 3 as systemd socket activation passes it.
func listenerFromPreforkd() (net.Listener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, errors.New("LISTEN_PID is not this process: not started by preforkd")
	}
	if n, err := strconv.Atoi(os.Getenv("LISTEN_FDS")); err != nil || n < 1 {
		return nil, errors.New("LISTEN_FDS is not set: no socket from preforkd")
	}
	f := os.NewFile(3, os.Getenv("LISTEN_FDNAMES"))
	defer f.Close() // FileListener made its own copy
	return net.FileListener(f)
}

// notify speaks sd_notify to preforkd (or systemd); a no-op without NOTIFY_SOCKET.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET") // "@name" is an abstract socket; package net knows
	if addr == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("sd_notify %q: %v", state, err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		log.Printf("sd_notify %q: %v", state, err)
	}
}

func main() {
	ln, err := listenerFromPreforkd()
	if err != nil {
		log.Fatalf("hello: %v", err)
	}
	slot := os.Getenv("PREFORK_WORKER_ID")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(w, "hello from go, slot %s pid %d\n", slot, os.Getpid())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	notify("READY=1")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case err := <-served:
		log.Fatalf("hello: serve: %v", err)
	}
	notify("STOPPING=1")
	// Graceful: stop accepting, finish the requests in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatalf("hello: shutdown: %v", err)
	}
}
