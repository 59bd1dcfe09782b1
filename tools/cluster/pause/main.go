// Command pause is the process of every pod sandbox of the test cluster (the image
// containerd names registry.k8s.io/pause): it holds the pod's namespaces, does nothing,
// and ends on SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
}
