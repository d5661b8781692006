package main

// The request verb: any row of the daemon's request table by its
// if_tcp(7P) name, with the argument built from FIELD=VALUE pairs. It is
// the escape hatch for requests no other verb makes, and a way to see the
// exact structure the daemon answers with.

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const requestUsage = `  tapadm request NAME [family=inet|inet6|unspec] [FIELD=VALUE ...]
`

func requestUsagef(format string, args ...any) error {
	return usagef("request", format, args...)
}

// requestCmd is a parsed request command line.
type requestCmd struct {
	op     string
	family ctl.Family
	args   map[string]any // the JSON object of the argument
}

// parseRequest builds the request from NAME and FIELD=VALUE pairs. FIELD
// is a wire name (lifr_name, rt_dst, mpr_val, ...); a dotted name is a
// field of a nested object (lifr_ifinfo.lir_maxmtu=9000). Values are typed
// by a simple rule: integers (decimal or 0x hex) are numbers, true and
// false booleans, flag fields (*_flags, modflags, modmask, origflags,
// origmask) also take IFF_ names joined by '|', and anything else is a
// string. family=inet|inet6|unspec selects the socket family (default
// inet). Which fields a request takes is the daemon's business: unknown
// fields are ignored there and unknown requests refused with EINVAL.
func parseRequest(args []string) (requestCmd, error) {
	cmd := requestCmd{family: ctl.AF_INET, args: map[string]any{}}
	if len(args) == 0 || args[0] == "" || strings.Contains(args[0], "=") {
		return cmd, requestUsagef("missing request name (SIOCGLIFFLAGS, SIOCADDRT, ...)")
	}
	cmd.op = args[0]
	seen := map[string]bool{}
	for _, arg := range args[1:] {
		field, val, ok := strings.Cut(arg, "=")
		if !ok || field == "" {
			return cmd, requestUsagef("expected FIELD=VALUE, got %q", arg)
		}
		if seen[field] {
			return cmd, requestUsagef("field %s given twice", field)
		}
		seen[field] = true
		if field == "family" {
			switch f := ctl.Family(val); f {
			case ctl.AF_INET, ctl.AF_INET6, ctl.AF_UNSPEC:
				cmd.family = f
			default:
				return cmd, requestUsagef("bad family %q (inet, inet6 or unspec)", val)
			}
			continue
		}
		v, err := requestValue(field, val)
		if err != nil {
			return cmd, err
		}
		if err := setPath(cmd.args, field, v); err != nil {
			return cmd, err
		}
	}
	return cmd, nil
}

// requestValue types one value by the rule of parseRequest.
func requestValue(field, val string) (any, error) {
	leaf := field[strings.LastIndexByte(field, '.')+1:]
	switch {
	case isFlagField(leaf):
		f, err := ctl.ParseFlags(val)
		if err != nil || val == "" {
			return nil, requestUsagef("%s: bad flags %q (a number or IFF_ names joined by |)", field, val)
		}
		return json.Number(strconv.FormatUint(uint64(f), 10)), nil
	case val == "true":
		return true, nil
	case val == "false":
		return false, nil
	}
	if n, ok := parseInteger(val); ok {
		return n, nil
	}
	return val, nil
}

// isFlagField reports whether a field (its last dotted part) is a flag word.
func isFlagField(leaf string) bool {
	switch leaf {
	case "modflags", "modmask", "origflags", "origmask":
		return true
	}
	return strings.HasSuffix(leaf, "_flags")
}

// parseInteger parses a decimal or 0x hex integer into a JSON number.
func parseInteger(s string) (json.Number, bool) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	if hex, ok := strings.CutPrefix(strings.ToLower(digits), "0x"); ok {
		if hex == "" || strings.Contains(hex, "_") {
			return "", false
		}
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			return "", false
		}
		n := strconv.FormatUint(v, 10)
		if neg {
			n = "-" + n
		}
		return json.Number(n), true
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	// Decimal digits: normalise leading zeros ("010" is 10, not octal).
	d := strings.TrimLeft(digits, "0")
	if d == "" {
		d = "0"
	}
	if neg && d != "0" {
		d = "-" + d
	}
	return json.Number(d), true
}

// setPath sets a dotted field in a nested JSON object.
func setPath(obj map[string]any, field string, v any) error {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		if p == "" {
			return requestUsagef("bad field name %q", field)
		}
		if i == len(parts)-1 {
			if _, ok := obj[p]; ok {
				return requestUsagef("field %s conflicts with another field", field)
			}
			obj[p] = v
			return nil
		}
		next, exists := obj[p]
		if !exists {
			m := map[string]any{}
			obj[p] = m
			obj = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return requestUsagef("field %s conflicts with %s", field, strings.Join(parts[:i+1], "."))
		}
		obj = m
	}
	return nil
}

// request runs the request verb: the reply is printed as indented JSON.
func (a *app) request(ctx context.Context, args []string) error {
	cmd, err := parseRequest(args)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	var reply json.RawMessage
	if err := r.Do(ctx, cmd.op, cmd.family, cmd.args, &reply); err != nil {
		return err
	}
	if len(reply) == 0 {
		return nil
	}
	return writeJSON(a.stdout, reply)
}
