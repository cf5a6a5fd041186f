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
