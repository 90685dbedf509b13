// flux-render prints what Flux's kustomize-controller would apply to one cluster of a
// GitOps repository, using the controller's own generator and substitution
// (github.com/fluxcd/pkg/kustomize, which builds with sigs.k8s.io/kustomize/api).
// The harness's tests use it as the oracle for the Rust renderer (src/repo/render.rs).
//
// usage: flux-render REPO CLUSTER_PATH
//
//	REPO          the repository's root directory (never written: it is copied first)
//	CLUSTER_PATH  the path `flux bootstrap --path` was given, relative to REPO
//	              (kubernetes/clusters/infra)
//
// It starts from a Kustomization flux-system/flux-system whose spec.path is
// CLUSTER_PATH and follows every Flux Kustomization the builds produce whose
// sourceRef is that GitRepository, as kustomize-controller does:
//   - generator.WriteFile: a kustomization.yaml generated where the path has none,
//     spec.targetNamespace, namePrefix/Suffix, patches, images, components;
//   - generator.SecureBuild: kustomize build restricted to the repository;
//   - generator.SubstituteVariables for each object, only when spec.postBuild is set,
//     reading substituteFrom ConfigMaps and Secrets from what the builds applied.
//
// A cluster converges over several reconciliations: a ConfigMap one Kustomization
// applies is read by another's substituteFrom. flux-render repeats the whole walk
// with the objects of the previous walk until nothing changes (at most 5 walks).
//
// Output (stdout, JSON): {"kustomizations": [{"name", "namespace", "path",
// "error"?, "objects": [...]}]} in the order they were reached. Exit 1 on a usage
// or I/O error; a Kustomization that fails to build is reported in "error".
package main

import (
	"bytes"
	"encoding/base64"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/kustomize"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const fluxGroup = "kustomize.toolkit.fluxcd.io"

type rendered struct {
	Name      string                   `json:"name"`
	Namespace string                   `json:"namespace"`
	Path      string                   `json:"path"`
	Error     string                   `json:"error,omitempty"`
	Objects   []map[string]interface{} `json:"objects"`
}

// store answers the generator's Get for ConfigMaps and Secrets from the objects a
// walk applied. Only Get is used by SubstituteVariables; any other call panics.
type store struct {
	client.Client
	objects map[string]map[string]interface{} // "Kind/namespace/name"
}

func (s *store) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	kind := "ConfigMap"
	if _, ok := obj.(*corev1.Secret); ok {
		kind = "Secret"
	}
	u, ok := s.objects[kind+"/"+key.Namespace+"/"+key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: strings.ToLower(kind) + "s"}, key.Name)
	}
	u = runtime.DeepCopyJSON(u)
	// The API server folds a Secret's stringData into data.
	if sd, ok := u["stringData"].(map[string]interface{}); ok {
		data, _ := u["data"].(map[string]interface{})
		if data == nil {
			data = map[string]interface{}{}
		}
		for k, v := range sd {
			data[k] = b64(fmt.Sprint(v))
		}
		u["data"] = data
		delete(u, "stringData")
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u, obj)
}

func main() {
	if len(os.Args) != 3 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: flux-render REPO CLUSTER_PATH")
		os.Exit(1)
	}
	work, err := os.MkdirTemp("", "flux-render-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(work)
	if err := copyTree(os.Args[1], work); err != nil {
		fail(err)
	}
	clusterPath := "./" + strings.TrimPrefix(filepath.ToSlash(filepath.Clean(os.Args[2])), "./")

	objects := map[string]map[string]interface{}{}
	var out []rendered
	var previous []byte
	for walk := 0; walk < 5; walk++ {
		out = walkCluster(work, clusterPath, &store{objects: objects})
		text, _ := json.Marshal(out)
		if bytes.Equal(text, previous) {
			break
		}
		previous = text
		objects = map[string]map[string]interface{}{}
		for _, k := range out {
			for _, o := range k.Objects {
				u := unstructured.Unstructured{Object: o}
				if u.GetAPIVersion() == "v1" && (u.GetKind() == "ConfigMap" || u.GetKind() == "Secret") {
					objects[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = o
				}
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(map[string]interface{}{"kustomizations": out}); err != nil {
		fail(err)
	}
}

// walkCluster builds the root Kustomization and every Kustomization reached from it.
func walkCluster(work, clusterPath string, s *store) []rendered {
	root := unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": fluxGroup + "/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]interface{}{"name": "flux-system", "namespace": "flux-system"},
		"spec": map[string]interface{}{
			"path":      clusterPath,
			"sourceRef": map[string]interface{}{"kind": "GitRepository", "name": "flux-system"},
		},
	}}
	queue := []unstructured.Unstructured{root}
	seen := map[string]bool{}
	var out []rendered
	for len(queue) > 0 {
		ks := queue[0]
		queue = queue[1:]
		id := ks.GetNamespace() + "/" + ks.GetName()
		if seen[id] {
			continue
		}
		seen[id] = true
		path, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
		r := rendered{Name: ks.GetName(), Namespace: ks.GetNamespace(), Path: path, Objects: []map[string]interface{}{}}
		objs, err := build(work, ks, s)
		if err != nil {
			r.Error = err.Error()
		}
		for _, o := range objs {
			r.Objects = append(r.Objects, o.Object)
			if followed(o) {
				if o.GetNamespace() == "" {
					o.SetNamespace(ks.GetNamespace())
				}
				queue = append(queue, o)
			}
		}
		out = append(out, r)
	}
	return out
}

// followed: a Flux Kustomization whose source is this repository (the bootstrap
// GitRepository flux-system/flux-system).
func followed(o unstructured.Unstructured) bool {
	if o.GetKind() != "Kustomization" || !strings.HasPrefix(o.GetAPIVersion(), fluxGroup+"/") {
		return false
	}
	kind, _, _ := unstructured.NestedString(o.Object, "spec", "sourceRef", "kind")
	name, _, _ := unstructured.NestedString(o.Object, "spec", "sourceRef", "name")
	ns, _, _ := unstructured.NestedString(o.Object, "spec", "sourceRef", "namespace")
	if ns == "" {
		ns = o.GetNamespace()
	}
	return kind == "GitRepository" && name == "flux-system" && (ns == "" || ns == "flux-system")
}

// build is kustomize-controller's generate + build for one Kustomization.
func build(work string, ks unstructured.Unstructured, s *store) ([]unstructured.Unstructured, error) {
	path, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
	dir, err := filepath.Abs(filepath.Join(work, path))
	if err != nil || !strings.HasPrefix(dir+string(filepath.Separator), work+string(filepath.Separator)) {
		return nil, fmt.Errorf("spec.path %q leaves the repository", path)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("kustomization path not found: %s", path)
	}
	gen := kustomize.NewGenerator(work, ks)
	action, err := gen.WriteFile(dir, kustomize.WithSaveOriginalKustomization())
	if err != nil {
		return nil, fmt.Errorf("kustomize create failed: %w", err)
	}
	defer kustomize.CleanDirectory(dir, action)
	m, err := kustomize.SecureBuild(work, dir, false)
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}
	_, postBuild, _ := unstructured.NestedMap(ks.Object, "spec", "postBuild")
	var out []unstructured.Unstructured
	for _, res := range m.Resources() {
		if postBuild {
			sub, err := kustomize.SubstituteVariables(context.Background(), s, ks, res)
			if err != nil {
				return out, fmt.Errorf("post build failed for %s/%s: %w", res.GetKind(), res.GetName(), err)
			}
			if sub != nil {
				res = sub
			}
		}
		obj, err := res.Map()
		if err != nil {
			return out, err
		}
		out = append(out, unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			outf, err := os.Create(target)
			if err != nil {
				return err
			}
			if _, err := io.Copy(outf, in); err != nil {
				outf.Close()
				return err
			}
			return outf.Close()
		}
		return nil // symlinks, FIFOs: kustomize-controller's archive holds none
	})
}

func b64(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flux-render:", err)
	os.Exit(1)
}
