package config

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ServicesFile is where a port given by name is looked up. Tests point it
// elsewhere.
var ServicesFile = "/etc/services"

// validPortName is what a service name of services(5) may be.
var validPortName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+*-]*$`)

// lookupPort returns the port of the service name (or alias) for proto in
// file, as getservbyname(3) finds it: the first matching line wins. Its
// error names file, and says if the name is known for another protocol
// only.
func lookupPort(file, name string, proto Protocol) (uint16, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("%q: cannot read %s to look it up: %w (write the port number)", name, file, statError(err))
	}
	defer f.Close()
	var others []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, p, ok := strings.Cut(fields[1], "/")
		if !ok {
			continue
		}
		names := append(fields[:1:1], fields[2:]...)
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			continue
		}
		port, err := strconv.ParseUint(num, 10, 16)
		if err != nil || port == 0 {
			continue
		}
		if Protocol(p) == proto {
			return uint16(port), nil
		}
		others = append(others, fields[1])
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%q: cannot read %s to look it up: %w (write the port number)", name, file, err)
	}
	if len(others) > 0 {
		return 0, fmt.Errorf("%q is not a %s service in %s, only %s: write the port number", name, proto, file, strings.Join(others, ", "))
	}
	return 0, fmt.Errorf("%q is not a service name in %s: write the port number, or add the name there", name, file)
}
