//go:build linux && amd64

package vfork

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The code that runs in a child between its clone and its exec shares
// goinetd's memory, and on vforkExec's path its stack: it may make raw
// system calls and nothing else. A call into the runtime (a stack check's
// morestack, a bounds check's panic, an allocation, the race detector) or
// a write barrier there corrupts goinetd, and often only under load. The
// compiler gives no such guarantee, so TestChildCodeCallsNoRuntime checks
// the machine code the toolchain made of it.

// pkgPath is this package's import path, which the disassembler's names
// of its functions start with.
var pkgPath = reflect.TypeFor[vforkArgs]().PkgPath()

// childFunctions returns the functions of the package in dir that run in a
// child, as the disassembler names them: those marked //go:norace (the
// mark that keeps the race detector out of them; every one of them is
// also //go:nosplit) and those written in assembly.
func childFunctions(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pkg := range pkgs {
		for file, f := range pkg.Files {
			if !strings.HasSuffix(file, "_amd64.go") && !strings.HasSuffix(file, "_linux.go") {
				continue // another architecture's
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Doc == nil || fn.Recv != nil {
					continue
				}
				var norace, nosplit bool
				for _, c := range fn.Doc.List {
					norace = norace || c.Text == "//go:norace"
					nosplit = nosplit || c.Text == "//go:nosplit"
				}
				if norace && !nosplit {
					t.Errorf("%s: //go:norace without //go:nosplit: code that runs in the child may not grow its stack", fn.Name.Name)
				}
				if norace {
					names = append(names, pkgPath+"."+fn.Name.Name)
				}
			}
		}
	}
	asm, err := filepath.Glob(filepath.Join(dir, "*_amd64.s"))
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^TEXT\s+·(\w+)\(SB\)`)
	for _, file := range asm {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range text.FindAllSubmatch(b, -1) {
			names = append(names, pkgPath+"."+string(m[1])+".abi0")
		}
	}
	slices.Sort(names)
	return names
}

// TestChildCodeCallsNoRuntime builds goinetd (with the race detector if
// the tests have it) and disassembles every function that runs in a child,
// and every function they call, and fails on any call into package
// runtime, any write barrier, or any indirect call from Go code
// (assembly's are checked by hand: rawCloneVM calls execChild).
func TestChildCodeCallsNoRuntime(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command, to build goinetd and for go tool objdump")
	}
	// Not this test binary: go test strips its symbols.
	self := filepath.Join(t.TempDir(), "goinetd")
	build := exec.Command(goTool, "build", "-o", self)
	if raceEnabled {
		build.Args = append(build.Args, "-race")
	}
	build.Args = append(build.Args, "github.com/goinetd/goinetd/cmd/goinetd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build goinetd: %v\n%s", err, out)
	}
	roots := childFunctions(t, ".")
	for _, want := range []string{"execChild", "vforkExec", "rawVfork.abi0", "rawCloneVM.abi0"} {
		if !slices.Contains(roots, pkgPath+"."+want) {
			t.Fatalf("functions that run in the child: got %q; want %s among them (a mark lost?)", roots, want)
		}
	}
	checked := map[string]bool{}
	next := roots
	for len(next) > 0 {
		listing := objdump(t, goTool, self, next)
		funcs, problems := checkChildCode(listing)
		for _, p := range problems {
			t.Error(p)
		}
		var callees []string
		for _, name := range next {
			checked[name] = true
			called, ok := funcs[name]
			if !ok {
				t.Errorf("%s: not in %s's disassembly (inlined, or renamed?)", name, self)
			}
			callees = append(callees, called...)
		}
		next = nil
		for _, c := range callees {
			if !checked[c] && !slices.Contains(next, c) {
				next = append(next, c)
			}
		}
	}
	t.Logf("checked %d functions: %v", len(checked), slices.Sorted(maps.Keys(checked)))
}

// objdump returns go tool objdump's listing of the functions named in bin.
func objdump(t *testing.T, goTool, bin string, names []string) string {
	t.Helper()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	cmd := exec.Command(goTool, "tool", "objdump", "-s", "^("+strings.Join(quoted, "|")+")$", bin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool objdump: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// callTarget matches a direct call or jump to a symbol, and any symbol an
// instruction refers to.
var (
	callTarget = regexp.MustCompile(`^(?:CALL|JMP)\s+([^\s(]+)\(SB\)`)
	symbol     = regexp.MustCompile(`([\w./:*-]+)\(SB\)`)
)

// checkChildCode reads a listing of go tool objdump and returns, by
// function, the functions it calls directly (to be checked in turn), and
// a problem for each instruction that calls into or refers to package
// runtime, uses a write barrier, or calls through a register or memory
// outside assembly.
func checkChildCode(listing string) (calls map[string][]string, problems []string) {
	calls = map[string][]string{}
	var fn, file string
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "TEXT "); ok {
			fields := strings.Fields(rest)
			fn, file = strings.TrimSuffix(fields[0], "(SB)"), ""
			if len(fields) > 1 {
				file = fields[1]
			}
			calls[fn] = nil
			continue
		}
		// file:line, address, encoding, instruction: tab-separated.
		fields := strings.Split(strings.TrimSpace(line), "\t")
		if fn == "" || len(fields) < 2 {
			continue
		}
		inst := strings.TrimSpace(fields[len(fields)-1])
		where := fmt.Sprintf("%s (%s): %s", fn, strings.TrimSpace(fields[0]), inst)
		if strings.Contains(inst, "WriteBarrier") || strings.Contains(inst, "writeBarrier") {
			problems = append(problems, "write barrier in code that runs in the child: "+where)
			continue
		}
		for _, m := range symbol.FindAllStringSubmatch(inst, -1) {
			if strings.HasPrefix(m[1], "runtime.") {
				problems = append(problems, "runtime in code that runs in the child: "+where)
			}
		}
		if m := callTarget.FindStringSubmatch(inst); m != nil {
			if !strings.HasPrefix(m[1], "runtime.") {
				calls[fn] = append(calls[fn], m[1])
			}
		} else if strings.HasPrefix(inst, "CALL ") && !strings.HasSuffix(file, ".s") {
			problems = append(problems, "indirect call in code that runs in the child: "+where)
		}
	}
	return calls, problems
}

// TestCheckChildCodeFindsRuntimeCalls feeds checkChildCode a listing with
// what it must catch: the calls a stack check, a bounds check and the
// race detector add, a write barrier, and an indirect call.
func TestCheckChildCodeFindsRuntimeCalls(t *testing.T) {
	const listing = `TEXT github.com/goinetd/goinetd/internal/vfork.execChild(SB) /src/internal/vfork/vfork_linux_amd64.go
  vfork_linux_amd64.go:70	0x7ec560		e8db24ceff		CALL syscall.RawSyscall(SB)	
  vfork_linux_amd64.go:71	0x7ec561		e8db24ceff		CALL runtime.morestack_noctxt.abi0(SB)	
  vfork_linux_amd64.go:72	0x7ec562		e8db24ceff		CALL runtime.panicBounds(SB)	
  vfork_linux_amd64.go:73	0x7ec563		e8db24ceff		CALL runtime.racefuncenter(SB)	
  vfork_linux_amd64.go:74	0x7ec564		833d00000000		CMPL runtime.writeBarrier(SB), $0x0	
  vfork_linux_amd64.go:75	0x7ec565		e8db24ceff		CALL runtime.gcWriteBarrier2(SB)	
  vfork_linux_amd64.go:76	0x7ec566		ffd3			CALL BX	
TEXT github.com/goinetd/goinetd/internal/vfork.rawCloneVM.abi0(SB) /src/internal/vfork/vfork_linux_amd64.s
  vfork_linux_amd64.s:69	0xa887f7		ffd3			CALL BX			
`
	calls, problems := checkChildCode(listing)
	if want := []string{"syscall.RawSyscall"}; !slices.Equal(calls["github.com/goinetd/goinetd/internal/vfork.execChild"], want) {
		t.Errorf("calls of execChild: got %q; want %q", calls["github.com/goinetd/goinetd/internal/vfork.execChild"], want)
	}
	var lines []string
	for _, p := range problems {
		lines = append(lines, p[strings.Index(p, "(")+1:strings.Index(p, ")")])
	}
	want := []string{"vfork_linux_amd64.go:71", "vfork_linux_amd64.go:72", "vfork_linux_amd64.go:73",
		"vfork_linux_amd64.go:74", "vfork_linux_amd64.go:75", "vfork_linux_amd64.go:76"}
	if !slices.Equal(lines, want) {
		t.Errorf("problems at: got %q; want %q\n%s", lines, want, strings.Join(problems, "\n"))
	}
}
