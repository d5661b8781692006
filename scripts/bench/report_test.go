package main

import (
	"strings"
	"testing"
)

func TestCell(t *testing.T) {
	slirp := &result{Name: refSlirp, Values: map[string]float64{"a": 2, "b": 4}}
	veth := &result{Name: refVeth, Values: map[string]float64{"a": 20}}
	r := result{Name: "x", Values: map[string]float64{"a": 5, "b": 123.4, "c": 0.5}, Errors: map[string]string{"d": "boom"}}
	for _, tc := range []struct {
		name, col, want string
	}{
		{"both refs", "a", "5.00 (×2.50, ×0.25)"},
		{"veth lacks it", "b", "123 (×30.9, –)"},
		{"no refs have it", "c", "0.50 (–, –)"},
		{"failed", "d", "fail"},
		{"not applicable", "e", "–"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cell(r, tc.col, slirp, veth); got != tc.want {
				t.Errorf("cell(%q) = %q, want %q", tc.col, got, tc.want)
			}
		})
	}
	if got, want := cell(r, "a", nil, veth), "5.00 (–, ×0.25)"; got != want {
		t.Errorf("missing slirp4netns row: %q, want %q", got, want)
	}
}

func TestMarkdown(t *testing.T) {
	rep := report{Results: []result{
		{Name: refVeth, Values: map[string]float64{"ns→host 1500 P1": 10, colP50: 20}},
		{Name: refSlirp, Values: map[string]float64{"ns→host 1500 P1": 1, colP50: 100},
			Errors: map[string]string{colConn: "rr: connection refused"}},
	}}
	md := rep.markdown()
	for _, want := range []string{
		"| configuration | ns→host 1500 P1 | ns→host 1500 P4 |",
		"| veth | 10.0 (×10.0, ×1.00) | – |",
		"| slirp4netns | 1.00 (×1.00, ×0.10) | – |",
		"| slirp4netns | 100 (×1.00, ×5.00) | – | fail | – | – | – |",
		"- slirp4netns, conn/s: rr: connection refused\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMedianResult(t *testing.T) {
	rounds := []result{
		{Name: "x", Values: map[string]float64{"a": 3, "b": 10}, Errors: map[string]string{"c": "first"}},
		{Name: "x", Values: map[string]float64{"a": 1}, Errors: map[string]string{"b": "failed once", "c": "second"}},
		{Name: "x", Values: map[string]float64{"a": 2, "b": 20}, Errors: map[string]string{"c": "third"}},
	}
	m := medianResult(rounds)
	if m.Name != "x" || m.Values["a"] != 2 {
		t.Errorf("odd count: a = %v, want the middle value 2", m.Values["a"])
	}
	if m.Values["b"] != 15 {
		t.Errorf("even count: b = %v, want the mean of the middle two, 15", m.Values["b"])
	}
	if _, ok := m.Errors["b"]; ok {
		t.Error("b was measured in two rounds but keeps the third's error")
	}
	if _, ok := m.Values["c"]; ok || m.Errors["c"] != "third" {
		t.Errorf("c, never measured: value %v, error %q; want no value and the last error", m.Values["c"], m.Errors["c"])
	}
	rep := report{Rounds: 3, Results: []result{m}}
	if md := rep.markdown(); !strings.Contains(md, "median of 3 rounds") {
		t.Errorf("markdown does not say the figures are medians:\n%s", md)
	}
}
