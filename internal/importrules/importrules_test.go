// Package importrules asserts the import rules of DESIGN.md ("imports point
// down, never up") with `go list -deps -json`: link imports none of our
// packages, stack only link, route only stack, link and ctl, ctl none of
// ours and no gVisor, ifmgr no cmd/ or internal/daemon, arp/ndp/gateway/
// ilb never ifmgr, and tapadm no gVisor.
//
// Rules cover a package and everything below it (link covers link/tap);
// imports inside that tree are always allowed. A rule whose package does
// not exist yet is skipped, so the test grows with the tree. Only non-test
// imports count: a test may import what it likes.
package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tapstack/tapstack"

// rule constrains the transitive imports of one package tree of ours.
type rule struct {
	// subject is a package path relative to the module; the rule covers
	// it and the packages below it.
	subject string
	// onlyOurs, when not nil, lists the only trees of ours (relative
	// paths) that subject may import; nil means no such limit.
	onlyOurs []string
	// forbidden lists trees subject must not import: relative paths for
	// ours, full paths (gvisor.dev) for others.
	forbidden []string
}

var rules = []rule{
	{subject: "link", onlyOurs: []string{}},
	{subject: "stack", onlyOurs: []string{"link"}},
	{subject: "route", onlyOurs: []string{"stack", "link", "ctl"}},
	{subject: "ctl", onlyOurs: []string{}, forbidden: []string{"gvisor.dev"}},
	{subject: "ifmgr", forbidden: []string{"cmd", "internal/daemon"}},
	{subject: "arp", forbidden: []string{"ifmgr", "cmd", "internal/daemon"}},
	{subject: "ndp", forbidden: []string{"ifmgr", "cmd", "internal/daemon"}},
	{subject: "gateway", forbidden: []string{"ifmgr", "cmd", "internal/daemon"}},
	{subject: "ilb", forbidden: []string{"ifmgr", "cmd", "internal/daemon"}},
	{subject: "cmd/tapadm", forbidden: []string{"gvisor.dev"}},
}

// pkg is what the rules need of one `go list -json` record.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	DepOnly    bool
}

// under reports whether path is tree or below it.
func under(path, tree string) bool {
	return path == tree || strings.HasPrefix(path, tree+"/")
}

// full turns a relative path of ours into an import path; paths of others
// (with a dot in the first element) are returned as they are.
func full(p string) string {
	if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
		return p
	}
	return module + "/" + p
}

// violations checks every package of ours (roots) against the rules and
// returns one message per forbidden dependency, with the import chain that
// brings it in. checked receives, per rule subject, the packages checked.
func violations(graph map[string]*pkg, roots []string, rules []rule, checked map[string][]string) []string {
	var out []string
	for _, r := range rules {
		tree := full(r.subject)
		for _, p := range roots {
			if !under(p, tree) {
				continue
			}
			if checked != nil {
				checked[r.subject] = append(checked[r.subject], p)
			}
			info := graph[p]
			if info == nil {
				continue
			}
			for _, d := range info.Deps {
				if why := forbiddenBy(r, tree, d); why != "" {
					out = append(out, p+" must not import "+d+" ("+why+"): "+strings.Join(chain(graph, p, d), " → "))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// forbiddenBy says why rule r (for tree) forbids dependency d, or "".
func forbiddenBy(r rule, tree, d string) string {
	if under(d, tree) {
		return ""
	}
	for _, f := range r.forbidden {
		if under(d, full(f)) {
			return r.subject + " imports nothing under " + f
		}
	}
	if r.onlyOurs != nil && under(d, module) {
		if !slices.ContainsFunc(r.onlyOurs, func(a string) bool { return under(d, full(a)) }) {
			if len(r.onlyOurs) == 0 {
				return r.subject + " imports none of our packages"
			}
			return r.subject + " imports only " + strings.Join(r.onlyOurs, ", ") + " among ours"
		}
	}
	return ""
}

// chain returns the shortest import path from p to d (both included).
func chain(graph map[string]*pkg, p, d string) []string {
	prev := map[string]string{p: ""}
	queue := []string{p}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == d {
			var c []string
			for x := d; x != ""; x = prev[x] {
				c = append(c, x)
			}
			slices.Reverse(c)
			return c
		}
		if info := graph[cur]; info != nil {
			for _, i := range info.Imports {
				if _, seen := prev[i]; !seen {
					prev[i] = cur
					queue = append(queue, i)
				}
			}
		}
	}
	return []string{p, "…", d}
}

// goTool finds the go command: PATH, else the toolchain this test was
// built with.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("no go command in PATH or %s", p)
	}
	return p
}

// goList runs `go list -e -deps -json ./...` in the module root and
// returns every package it reports and the packages of ours.
func goList(t *testing.T) (map[string]*pkg, []string) {
	t.Helper()
	gocmd := goTool(t)
	gomod, err := exec.Command(gocmd, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))

	// -e: a package that does not build (someone is mid-change) still
	// reports its imports; building is other tests' business.
	cmd := exec.Command(gocmd, "list", "-e", "-deps", "-json=ImportPath,Imports,Deps,DepOnly", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", root, err, stderr.Bytes())
	}

	graph := map[string]*pkg{}
	var roots []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		graph[p.ImportPath] = &p
		if !p.DepOnly && under(p.ImportPath, module) {
			roots = append(roots, p.ImportPath)
		}
	}
	return graph, roots
}

func TestImportRules(t *testing.T) {
	graph, roots := goList(t)
	if !slices.Contains(roots, module+"/internal/importrules") {
		t.Fatalf("go list ./... did not list this package; found %v", roots)
	}
	checked := map[string][]string{}
	for _, v := range violations(graph, roots, rules, checked) {
		t.Error(v)
	}
	for _, r := range rules {
		if len(checked[r.subject]) == 0 {
			t.Logf("%s: no such package yet, rule skipped", r.subject)
		} else {
			t.Logf("%s: checked %s", r.subject, strings.Join(checked[r.subject], ", "))
		}
	}
}

// TestRulesCatchViolations runs the checker on a made-up import graph, so
// a checker that silently accepts everything cannot pass.
func TestRulesCatchViolations(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	graph := map[string]*pkg{}
	add := func(path string, imports ...string) {
		graph[path] = &pkg{ImportPath: path, Imports: imports}
	}
	add(m("link"), "fmt", "gvisor.dev/gvisor/pkg/tcpip/stack")
	add(m("link/tap"), m("link"), m("stack")) // violation: link → stack
	add(m("stack"), m("link"), "gvisor.dev/gvisor/pkg/tcpip/stack")
	add(m("route"), m("stack"), m("ctl"))
	add(m("ctl"), m("ctl/wire"))
	add(m("ctl/wire"), "gvisor.dev/gvisor/pkg/tcpip") // violation: ctl → gvisor
	add(m("ifmgr"), m("route"), m("internal/daemon")) // violation: ifmgr → daemon
	add(m("internal/daemon"), m("ifmgr"))
	add(m("arp"), m("stack"), m("ifmgr")) // violation: arp → ifmgr (and daemon through it)
	add(m("cmd/tapadm"), m("ctl"))        // violation through ctl/wire
	add("fmt")
	add("gvisor.dev/gvisor/pkg/tcpip/stack", "gvisor.dev/gvisor/pkg/tcpip")
	add("gvisor.dev/gvisor/pkg/tcpip")
	// Fill in Deps as go list does: the transitive closure of Imports.
	var roots []string
	for path, p := range graph {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(q string) {
			for _, i := range graph[q].Imports {
				if !seen[i] {
					seen[i] = true
					walk(i)
				}
			}
		}
		walk(path)
		for d := range seen {
			p.Deps = append(p.Deps, d)
		}
		slices.Sort(p.Deps)
		if under(path, module) {
			roots = append(roots, path)
		}
	}
	slices.Sort(roots)

	got := violations(graph, roots, rules, nil)
	wantSubstr := []string{
		m("link/tap") + " must not import " + m("stack"),
		m("ctl/wire") + " must not import gvisor.dev/gvisor/pkg/tcpip",
		m("ifmgr") + " must not import " + m("internal/daemon"),
		m("arp") + " must not import " + m("ifmgr"),
		m("arp") + " must not import " + m("internal/daemon"),
		m("cmd/tapadm") + " must not import gvisor.dev/gvisor/pkg/tcpip",
		// route → stack → link is allowed; link/tap's chain is named.
		m("link/tap") + " → " + m("stack"),
	}
	joined := strings.Join(got, "\n")
	for _, w := range wantSubstr {
		if !strings.Contains(joined, w) {
			t.Errorf("violations lack %q; got:\n%s", w, joined)
		}
	}
	for _, v := range got {
		if strings.HasPrefix(v, m("route")+" ") || strings.HasPrefix(v, m("stack")+" ") {
			t.Errorf("allowed import reported: %s", v)
		}
	}
}
