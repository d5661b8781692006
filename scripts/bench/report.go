package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// result is one configuration's figures, by column name; a figure that
// could not be measured has an entry in Errors instead.
type result struct {
	Name   string             `json:"name"`
	Values map[string]float64 `json:"values"`
	Errors map[string]string  `json:"errors,omitempty"`
}

func (r *result) fail(col string, err error) { r.Errors[col] = err.Error() }

// medianResult merges the rounds of one configuration: each figure is the
// median of the rounds that measured it (the mean of the middle two for
// an even count); a figure no round measured keeps the last round's error.
func medianResult(rounds []result) result {
	m := result{Name: rounds[0].Name, Values: map[string]float64{}, Errors: map[string]string{}}
	samples := map[string][]float64{}
	for _, r := range rounds {
		for k, v := range r.Values {
			samples[k] = append(samples[k], v)
		}
		for k, e := range r.Errors {
			m.Errors[k] = e
		}
	}
	for k, vs := range samples {
		slices.Sort(vs)
		n := len(vs)
		m.Values[k] = (vs[(n-1)/2] + vs[n/2]) / 2
		delete(m.Errors, k)
	}
	return m
}

// report is a whole run, as written to bench.json.
type report struct {
	Machine machineInfo `json:"machine"`
	Seconds int         `json:"seconds_per_iperf3_run"`
	Rounds  int         `json:"rounds"` // each figure the median of this many
	Units   string      `json:"units"`
	Results []result    `json:"results"`
}

// The two reference configurations the ratios are taken against.
const (
	refSlirp = "slirp4netns"
	refVeth  = "veth"
)

func throughputKeys() []string {
	var ks []string
	for _, t := range throughputCols {
		ks = append(ks, t.key())
	}
	return ks
}

// markdown renders two tables, throughput and the rest, with every
// figure followed by its ratios to slirp4netns and veth, and a list of
// the failures.
func (rep *report) markdown() string {
	var sb strings.Builder
	if rep.Rounds > 1 {
		fmt.Fprintf(&sb, "Each figure is the median of %d rounds over all configurations in turn.\n\n", rep.Rounds)
	}
	sb.WriteString("Throughput in Gbit/s, each cell: value (× slirp4netns, × veth); higher is better.\n\n")
	rep.table(&sb, throughputKeys())
	sb.WriteString("\nLatency (1-byte TCP ping-pong), connections per second (connect, 1 byte each way, close), " +
		"daemon CPU µs per round trip of the ping-pong and seconds per GB moved in the iperf3 runs, and peak RSS; " +
		"each cell: value (× slirp4netns, × veth); for all but conn/s lower is better.\n\n")
	rep.table(&sb, []string{colP50, colP99, colConn, colRRCPU, colCPU, colRSS})
	var fails []string
	for _, r := range rep.Results {
		seen := map[string]bool{}
		for _, k := range append(throughputKeys(), colP50, colP99, colConn) {
			if e, ok := r.Errors[k]; ok && !seen[e] {
				seen[e] = true
				fails = append(fails, fmt.Sprintf("- %s, %s: %s\n", r.Name, k, e))
			}
		}
	}
	if len(fails) > 0 {
		sb.WriteString("\nFailures:\n\n")
		sb.WriteString(strings.Join(fails, ""))
	}
	return sb.String()
}

func (rep *report) table(sb *strings.Builder, cols []string) {
	sb.WriteString("| configuration |")
	for _, c := range cols {
		fmt.Fprintf(sb, " %s |", c)
	}
	sb.WriteString("\n|---|" + strings.Repeat("---:|", len(cols)) + "\n")
	slirp, veth := rep.find(refSlirp), rep.find(refVeth)
	for _, r := range rep.Results {
		fmt.Fprintf(sb, "| %s |", r.Name)
		for _, c := range cols {
			fmt.Fprintf(sb, " %s |", cell(r, c, slirp, veth))
		}
		sb.WriteString("\n")
	}
}

func (rep *report) find(name string) *result {
	for i := range rep.Results {
		if rep.Results[i].Name == name {
			return &rep.Results[i]
		}
	}
	return nil
}

// cell is "value (×a, ×b)": a and b are the ratios to the references,
// "–" where a reference lacks the figure; "fail" when r does, "–" when
// the figure does not apply (no daemon for veth).
func cell(r result, col string, refs ...*result) string {
	if _, ok := r.Errors[col]; ok {
		return "fail"
	}
	v, ok := r.Values[col]
	if !ok {
		return "–"
	}
	var ratios []string
	for _, ref := range refs {
		rv, ok := 0.0, false
		if ref != nil {
			rv, ok = ref.Values[col]
		}
		if !ok || rv == 0 {
			ratios = append(ratios, "–")
			continue
		}
		ratios = append(ratios, "×"+num(v/rv))
	}
	return fmt.Sprintf("%s (%s)", num(v), strings.Join(ratios, ", "))
}

// num prints three significant digits at most, no exponent.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// write writes bench.json, bench.md and, with gnuplot, bench.png.
func (rep *report) write(dir, table string) error {
	rep.Units = "throughput Gbit/s; " + colP50 + ", " + colP99 + "; " + colConn + "; " + colRRCPU + " (daemon user+system per round trip); " + colCPU + " (daemon user+system per GB received); " + colRSS + " (VmHWM)"
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	md := rep.Machine.line() + "\n\n" + table
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return rep.chart(dir)
}

// chart draws grouped bars of throughput per configuration with gnuplot;
// without gnuplot it says so and draws nothing.
func (rep *report) chart(dir string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		fmt.Println("gnuplot not installed: no bench.png (apt-get install gnuplot-nox)")
		return nil
	}
	var data strings.Builder
	keys := throughputKeys()
	data.WriteString(`"configuration"`)
	for _, k := range keys {
		fmt.Fprintf(&data, ` "%s"`, k)
	}
	data.WriteString("\n")
	for _, r := range rep.Results {
		fmt.Fprintf(&data, "%q", r.Name)
		for _, k := range keys {
			v, ok := r.Values[k]
			if !ok {
				data.WriteString(" 0") // failed: an empty bar
				continue
			}
			fmt.Fprintf(&data, " %g", v)
		}
		data.WriteString("\n")
	}
	dat := filepath.Join(dir, "bench.dat")
	if err := os.WriteFile(dat, []byte(data.String()), 0o644); err != nil {
		return err
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1400,700 noenhanced
set output %q
set title "iperf3 throughput (Gbit/s) - %s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set key outside right top vertical
set ylabel "Gbit/s"
set grid ytics
set xtics rotate by 20 right
plot for [i=2:%d] %q using i:xtic(1) title columnheader(i)
`, filepath.Join(dir, "bench.png"), rep.Machine.CPU, len(keys)+1, dat)
	cmd := exec.CommandContext(context.Background(), "gnuplot")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, out)
	}
	return nil
}
