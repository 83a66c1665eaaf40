// Command pause is the process that holds a pod sandbox's namespaces: it sleeps, reaps the
// orphans re-parented to it (it is PID 1 in the sandbox), and exits on SIGINT or SIGTERM.
// Built by hack/cluster-bins.sh for the local node's images; no registry is needed.
//
// With -listen ADDR it also answers every HTTP request with its host name, which makes the
// same binary a test workload behind a Service.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "serve HTTP on this address (test workloads only)")
	flag.Parse()
	if *listen != "" {
		host, _ := os.Hostname()
		go func() {
			err := http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintln(w, host)
			}))
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
