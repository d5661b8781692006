package main

// tapstackd run [flags] -- CMD [ARGS...]: run CMD in a fresh network
// namespace connected through the gateway, as pasta does, and exit with
// its status.
//
// The command starts as a hidden helper (childVerb) cloned into new
// network and mount namespaces. It waits on an inherited pipe while the
// daemon connects its namespace, then, if the DNS forwarder runs, bind
// mounts a resolv.conf naming it over /etc/resolv.conf (in its own mount
// namespace only) and execs CMD. Without root, tapstackd first re-executes
// itself in a new user namespace in which the caller is root, as
// `unshare -r` does, and does the rest there.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/daemon"
)

// childVerb is the hidden helper that becomes CMD.
const childVerb = "__run-child"

// syncFD is the descriptor on which the helper waits for "1".
const syncFD = 3

// killDelay is how long a command has to exit after SIGTERM (on --exit-fd)
// before it is killed.
const killDelay = 5 * time.Second

const runUsage = "usage: tapstackd run [flags] -- CMD [ARGS...]\n"

const runHelp = runUsage + `
Runs CMD in a new network namespace connected through tapstack's gateway
(tap0 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3; fd00::100/64) and
exits with its status. CMD sees a resolv.conf naming the DNS forwarder and
finds the daemon's control socket in $TAPSTACK_CTL.

Flags:
`

// runCommand is `tapstackd run`.
func runCommand(ctx context.Context, args []string, stderr io.Writer) error {
	var o options
	fs := newFlagSet("tapstackd run", &o, true)
	if help, err := parseFlags(fs, args, runHelp, stderr); help || err != nil {
		return err
	}
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 {
		return errors.New("run: no command given\n" + runUsage)
	}
	if err := o.check(visited(fs), true); err != nil {
		return err
	}
	log := newLogger(stderr, o.verbose)
	applySched(o.sched, true, o.busyPoll, log)
	if os.Geteuid() != 0 {
		return runInUserns(args, &o)
	}
	o.configure = true
	nsCfg, err := o.namespaceConfig(log)
	if err != nil {
		return err
	}
	path := o.ctl
	if path == "" {
		path = runSocketPath()
	}
	log.Debug("control socket", "ctl", path)
	// No DAD: tapstack configures both ends of the namespace's link.
	d, err := daemon.New(daemon.Config{CtlPath: path, Services: splitList(o.services), CreateTap: createTap, NoDAD: true, Log: log})
	if err != nil {
		return err
	}
	defer d.Close()

	// Signals go to the command; tapstackd ends when it does. SIGINT from
	// the terminal reaches the command directly (same process group).
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGHUP, os.Interrupt)
	defer signal.Stop(sigc)

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer syncW.Close()
	child, err := startChild(cmdArgs, path, syncR, o.disableDNS)
	syncR.Close()
	if err != nil {
		return err
	}
	waitc := make(chan error, 1)
	go func() { waitc <- child.Wait() }()
	abort := func(err error) error {
		syncW.Close() // the helper exits without running the command
		<-waitc
		return err
	}

	nsCfg.Netns = strconv.Itoa(child.Process.Pid)
	n, err := d.ConnectNamespace(nsCfg)
	if err != nil {
		return abort(err)
	}
	var resolv string
	if !o.disableDNS {
		resolv, err = writeResolvConf(n, o.resolvConf)
		if err != nil {
			return abort(err)
		}
		defer os.Remove(resolv)
	}
	stopServing := startServing(context.WithoutCancel(ctx), d)
	defer stopServing()
	if _, err := io.WriteString(syncW, resolv+"\n"); err != nil {
		return abort(fmt.Errorf("start %s: %w", cmdArgs[0], err))
	}
	syncW.Close()
	if err := signalReady(o.readyFD); err != nil {
		log.Warn("ready descriptor", "err", err)
	}

	nsDone, exitFD := n.Done(), watchExitFD(o.exitFD)
	var kill <-chan time.Time
	for {
		select {
		case err := <-waitc:
			return commandStatus(err)
		case s := <-sigc:
			if s != os.Interrupt {
				child.Process.Signal(s)
			}
		case <-exitFD:
			exitFD = nil
			log.Info("exit descriptor closed; stopping the command")
			child.Process.Signal(syscall.SIGTERM)
			kill = time.After(killDelay)
		case <-kill:
			child.Process.Kill()
		case <-nsDone:
			nsDone = nil
			log.Warn("the command's network is gone; waiting for the command to exit")
		}
	}
}

// startChild starts the helper in new network and mount namespaces; it
// inherits syncR as descriptor 3 and finds the daemon at ctlPath.
func startChild(cmdArgs []string, ctlPath string, syncR *os.File, noDNS bool) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find tapstackd: %w", err)
	}
	child := exec.Command(self, append([]string{childVerb, "--"}, cmdArgs...)...)
	child.Args[0] = cmdArgs[0]
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	child.ExtraFiles = []*os.File{syncR}
	child.Env = append(os.Environ(), "TAPSTACK_CTL="+ctlPath)
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := child.Start(); err != nil {
		return nil, fmt.Errorf("run: new network namespace for %s: %w", cmdArgs[0], err)
	}
	return child, nil
}

// commandStatus turns the command's end into tapstackd's: nil for 0, the
// exit status, or 128+signal.
func commandStatus(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return exitCode(128 + int(ws.Signal()))
	case ok:
		return exitCode(ws.ExitStatus())
	}
	return exitCode(ee.ExitCode())
}

// runSocketPath is the private control socket of `run`:
// /run/tapstack/run-PID.sock for root, $XDG_RUNTIME_DIR/tapstack/run-PID.sock
// (or a directory in $TMPDIR) otherwise.
func runSocketPath() string {
	name := fmt.Sprintf("run-%d.sock", os.Getpid())
	if os.Geteuid() == 0 {
		return filepath.Join(filepath.Dir(ctl.DefaultSocket), name)
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "tapstack", name)
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("tapstack-%d", os.Geteuid()), name)
}

// writeResolvConf writes the resolv.conf the command sees: the DNS
// forwarder's addresses, and the search domains of the host's file.
func writeResolvConf(n *daemon.Namespace, hostConf string) (string, error) {
	cfg := n.Gateway().Config()
	var b strings.Builder
	b.WriteString("# tapstackd run: the gateway's DNS forwarder\n")
	for _, a := range []string{addrString(cfg.V4.DNS), addrString(cfg.V6.DNS)} {
		if a != "" {
			b.WriteString("nameserver " + a + "\n")
		}
	}
	if hostConf == "" {
		hostConf = "/etc/resolv.conf"
	}
	if f, err := os.Open(hostConf); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) > 1 && (fs[0] == "search" || fs[0] == "domain") {
				b.WriteString(sc.Text() + "\n")
			}
		}
		f.Close()
	}
	f, err := os.CreateTemp("", "tapstackd-resolv-*.conf")
	if err != nil {
		return "", fmt.Errorf("resolv.conf for the command: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("resolv.conf for the command: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// runChild is the helper: it waits for the daemon (a line on descriptor
// 3: the resolv.conf to use, possibly empty), then becomes the command.
// If the daemon gives up, it exits 125 without running anything.
func runChild(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New(childVerb + ": no command")
	}
	sync := os.NewFile(syncFD, "sync")
	line, err := bufio.NewReader(sync).ReadString('\n')
	sync.Close()
	if err != nil {
		return exitCode(125) // the daemon failed and says why
	}
	if resolv := strings.TrimSuffix(line, "\n"); resolv != "" {
		if err := bindResolvConf(resolv); err != nil {
			fmt.Fprintf(stderr, "tapstackd run: warning: %v; DNS uses the host's /etc/resolv.conf\n", err)
		}
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "tapstackd run: %v\n", err)
		return exitCode(127)
	}
	err = syscall.Exec(path, args, os.Environ())
	fmt.Fprintf(stderr, "tapstackd run: exec %s: %v\n", path, err)
	return exitCode(126)
}

// bindResolvConf mounts file over /etc/resolv.conf in the helper's own
// mount namespace, after making its mounts stop propagating back.
func bindResolvConf(file string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := unix.Mount(file, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on /etc/resolv.conf: %w", file, err)
	}
	return nil
}

// runInUserns re-executes `tapstackd run` in a new user namespace where
// the caller is root, with the same arguments and a private control socket
// the caller can reach, and returns its exit status.
func runInUserns(args []string, o *options) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find tapstackd: %w", err)
	}
	path := o.ctl
	if path == "" {
		path = runSocketPath()
	}
	inner := exec.Command(self, append([]string{"run", "--ctl", path}, args...)...)
	inner.Stdin, inner.Stdout, inner.Stderr = os.Stdin, os.Stdout, os.Stderr
	// --ready-fd and --exit-fd keep their numbers.
	for _, fd := range []int{o.readyFD, o.exitFD} {
		if fd < 3 {
			continue
		}
		for len(inner.ExtraFiles) < fd-2 {
			inner.ExtraFiles = append(inner.ExtraFiles, nil)
		}
		inner.ExtraFiles[fd-3] = os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd))
	}
	inner.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGHUP, os.Interrupt)
	defer signal.Stop(sigc)
	if err := inner.Start(); err != nil {
		return fmt.Errorf("run: without root, tapstackd needs a user namespace, and creating one failed: %w "+
			"(are unprivileged user namespaces disabled? see sysctl kernel.unprivileged_userns_clone "+
			"and kernel.apparmor_restrict_unprivileged_userns)", err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- inner.Wait() }()
	for {
		select {
		case err := <-waitc:
			return commandStatus(err)
		case s := <-sigc:
			if s != os.Interrupt {
				inner.Process.Signal(s)
			}
		}
	}
}
