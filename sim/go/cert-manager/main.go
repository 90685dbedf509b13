// Command cert-manager-controller is the simulation's cert-manager controller:
// the upstream controllers from github.com/cert-manager/cert-manager (pinned in
// sim/versions.env as CERT_MANAGER_VERSION), wired the way upstream's
// cmd/controller wires them (controller.NewContextFactory + controller.Known()),
// but limited to what the simulation needs:
//
//   - certificates-{trigger,issuing,key-manager,request-manager,readiness,revision-manager}
//   - certificaterequests-approver, certificaterequests-issuer-{ca,selfsigned}
//   - issuers, clusterissuers (CA and SelfSigned issuer types only)
//
// Upstream's cmd/controller is a separate Go module that the module proxy does
// not serve, so this wrapper is the binary. No leader election, no webhook, no
// ACME, no Vault/Venafi, no ingress/gateway shims. It only dials the API server
// named in --kubeconfig. /healthz and /metrics are served on --listen-address
// (empty disables it; the simulation passes 127.0.0.1:<port>).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	// controllers (each registers itself with controllerpkg.Register)
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// issuer types the issuers/clusterissuers controllers can set up
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

var defaultControllers = []string{
	"certificates-trigger",
	"certificates-issuing",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-readiness",
	"certificates-revision-manager",
	"certificaterequests-approver",
	"certificaterequests-issuer-ca",
	"certificaterequests-issuer-selfsigned",
	"issuers",
	"clusterissuers",
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server to reconcile (required)")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager", "namespace holding Secrets referenced by ClusterIssuers")
	namespace := flag.String("namespace", "", "limit to one namespace (empty: all)")
	listen := flag.String("listen-address", "", "host:port for /healthz and /metrics (empty: disabled)")
	controllers := flag.String("controllers", strings.Join(defaultControllers, ","), "comma-separated controllers to run")
	workers := flag.Int("workers", 2, "workers per controller")
	version := flag.Bool("version", false, "print the version and exit")
	verbosity := flag.Int("v", 1, "log verbosity")
	flag.Parse()

	if *version {
		fmt.Printf("cert-manager-controller %s (sim wrapper: %s)\n", util.AppVersion, strings.Join(defaultControllers, ","))
		return
	}
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "cert-manager-controller: --kubeconfig is required")
		os.Exit(2)
	}

	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("v", fmt.Sprint(*verbosity))
	logf.InitLogs()
	defer logf.FlushLogs()

	rootCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rootCtx = logf.NewContext(rootCtx, logf.Log, "controller")
	log := logf.FromContext(rootCtx)

	if err := run(rootCtx, *kubeconfig, *clusterResourceNamespace, *namespace, *listen, *controllers, *workers); err != nil {
		log.Error(err, "cert-manager-controller failed")
		logf.FlushLogs()
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, crNamespace, namespace, listen, enabled string, workers int) error {
	log := logf.FromContext(ctx)
	opts := controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		Namespace:          namespace,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: crNamespace,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	}
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}
	cmctx, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}

	want := map[string]bool{}
	for _, n := range strings.Split(enabled, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	known := controllerpkg.Known()
	var names []string
	for n := range want {
		if _, ok := known[n]; !ok {
			return fmt.Errorf("unknown controller %q", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)

	var healthy sync.Map // controller name -> true once constructed
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", listen, err)
		}
		srv := cmctx.Metrics.NewServer(ln)
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.Handler)
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			n := 0
			healthy.Range(func(_, _ any) bool { n++; return true })
			if n < len(names) {
				http.Error(w, fmt.Sprintf("%d/%d controllers started", n, len(names)), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintf(w, "ok %s\n", util.AppVersion)
		})
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "health/metrics server stopped")
			}
		}()
		go func() { <-ctx.Done(); _ = hs.Close() }()
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, n := range names {
		iface, err := known[n](factory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", n, err)
		}
		wg.Add(1)
		go func(n string, c controllerpkg.Interface) {
			defer wg.Done()
			log.Info("starting controller", "controller", n)
			healthy.Store(n, true)
			if err := c.Run(workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", n, err)
			}
		}(n, iface)
	}

	cmctx.KubeSharedInformerFactory.Start(ctx.Done())
	cmctx.SharedInformerFactory.Start(ctx.Done())
	cmctx.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	log.Info("cert-manager-controller running", "version", util.AppVersion, "controllers", names, "clusterResourceNamespace", crNamespace)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case err := <-errs:
		return err
	case <-done:
		return nil
	}
}
