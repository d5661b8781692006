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
