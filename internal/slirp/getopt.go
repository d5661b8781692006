package slirp

import (
	"fmt"
	"sort"
	"strings"
)

// optSpec is one option in getopt_long(3) terms.
type optSpec struct {
	long  string // without "--"; "" if short only
	short byte   // 0 if long only
	arg   bool   // takes a required argument
}

// optVal is one parsed option occurrence. Name is the long name if the
// option has one, else the short letter.
type optVal struct {
	name string
	arg  string
}

func (s optSpec) key() string {
	if s.long != "" {
		return s.long
	}
	return string(s.short)
}

// getopt parses args as glibc's getopt_long does with a permuting
// optstring: options may come before, between or after the operands;
// "--" ends the options; short options bundle ("-c6", "-m1500"); a long
// option takes its argument as "--mtu=1500" or "--mtu 1500" and may be
// abbreviated to any unique prefix ("--conf"). Errors carry glibc's
// wording, with prog as the program name; with an error, opts holds the
// options before it, which glibc's caller would have acted on already.
func getopt(prog string, args []string, specs []optSpec) (opts []optVal, operands []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			return opts, operands, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, err := lookupLong(prog, name, specs)
			if err != nil {
				return opts, nil, err
			}
			switch {
			case !s.arg && hasVal:
				return opts, nil, fmt.Errorf("%s: option '--%s' doesn't allow an argument", prog, s.long)
			case s.arg && !hasVal:
				if i+1 >= len(args) {
					return opts, nil, fmt.Errorf("%s: option '--%s' requires an argument", prog, s.long)
				}
				i++
				val = args[i]
			}
			opts = append(opts, optVal{name: s.key(), arg: val})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				s, ok := lookupShort(a[j], specs)
				if !ok {
					return opts, nil, fmt.Errorf("%s: invalid option -- '%c'", prog, a[j])
				}
				if !s.arg {
					opts = append(opts, optVal{name: s.key()})
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return opts, nil, fmt.Errorf("%s: option requires an argument -- '%c'", prog, a[j])
					}
					i++
					val = args[i]
				}
				opts = append(opts, optVal{name: s.key(), arg: val})
				break
			}
		default: // an operand, including "-"
			operands = append(operands, a)
		}
	}
	return opts, operands, nil
}

func lookupShort(c byte, specs []optSpec) (optSpec, bool) {
	for _, s := range specs {
		if s.short == c {
			return s, true
		}
	}
	return optSpec{}, false
}

// lookupLong finds a long option by its name or a unique prefix of it.
func lookupLong(prog, name string, specs []optSpec) (optSpec, error) {
	var matches []optSpec
	for _, s := range specs {
		switch {
		case s.long == "":
		case s.long == name:
			return s, nil
		case name != "" && strings.HasPrefix(s.long, name):
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 0:
		return optSpec{}, fmt.Errorf("%s: unrecognized option '--%s'", prog, name)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = "'--" + m.long + "'"
	}
	sort.Strings(names)
	return optSpec{}, fmt.Errorf("%s: option '--%s' is ambiguous; possibilities: %s", prog, name, strings.Join(names, " "))
}
