#include "textflag.h"

// func rawVfork(trap, a1, a2 uintptr) (pid uintptr, errno uintptr)
//
// clone(a1, a2=0) or clone3(a1, a2) for CLONE_VM|CLONE_VFORK: the child
// runs on the caller's stack until it execs, so the return address, which
// the child's calls overwrite, is kept in R12 across the system call (as
// syscall's rawVforkSyscall does).
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-40
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	trap+0(FP), AX
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, pid+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
ok:
	MOVQ	AX, pid+24(FP)
	MOVQ	$0, errno+32(FP)
	RET

// func rawCloneVM(trap, a1, a2, a3, top, fn, args uintptr) (pid uintptr, errno uintptr)
//
// clone(a1=flags, a2=top, 0, a3=child_tid) or clone3(a1, a2) for a child
// that shares the caller's memory but not its stack: the child starts on
// top (R12) and calls the Go function at fn (BX) with args (R13) as its
// register argument, and exits 127 should that return. These registers
// survive the system call, in both processes. fn is called directly, not
// through an ABI0 wrapper, which under -race would enter the race
// detector with the parent's goroutine.
TEXT ·rawCloneVM(SB),NOSPLIT|NOFRAME,$0-72
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	$0, DX
	MOVQ	a3+24(FP), R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	top+32(FP), R12
	MOVQ	fn+40(FP), BX
	MOVQ	args+48(FP), R13
	MOVQ	trap+0(FP), AX
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, pid+56(FP)
	NEGQ	AX
	MOVQ	AX, errno+64(FP)
	RET
ok:
	MOVQ	AX, pid+56(FP)
	MOVQ	$0, errno+64(FP)
	RET
child:
	MOVQ	R12, SP
	SUBQ	$16, SP // the callee's spill slot for its argument
	MOVQ	R13, AX
	XORPS	X15, X15
	CALL	BX
exit:
	MOVL	$127, DI
	MOVL	$60, AX // SYS_exit
	SYSCALL
	JMP	exit
