//! The token table's limits that the header states for 32-bit systems, where a test can reach
//! them (on 64-bit ones they are about 4·10^9 live managers): 65535 live managers, then
//! `SCM_E_OUTOFMEMORY` with `*out` untouched; and a released token stays refused, and no token is
//! handed out twice, even once its slot has run through every generation a 32-bit token carries
//! (16 bits of it).
//! A test binary of its own: it fills the process's table. No PC/SC call is made.
#![cfg(target_pointer_width = "32")]

use std::collections::HashSet;
use std::ptr;

use scardmanage::*;

const LIVE_MANAGERS: usize = 65535;
/// More than a 16-bit generation counts: the one slot left free runs out of generations.
const CYCLES: usize = 70_000;

fn create() -> Result<*mut scm_manage, scm_hresult> {
    let sentinel = 0x5a5a as *mut scm_manage;
    let mut out = sentinel;
    match unsafe { scm_create(&mut out) } {
        SCM_S_OK => Ok(out),
        hr => {
            assert_eq!(out, sentinel, "scm_create wrote *out when it failed with {hr:#x}");
            Err(hr)
        }
    }
}

#[test]
fn the_table_holds_65535_managers_and_never_revives_a_token() {
    let mut live = Vec::new();
    let refused = loop {
        match create() {
            Ok(m) => live.push(m),
            Err(hr) => break hr,
        }
        assert!(live.len() <= LIVE_MANAGERS, "more than {LIVE_MANAGERS} live managers");
    };
    assert_eq!(refused, SCM_E_OUTOFMEMORY);
    assert_eq!(live.len(), LIVE_MANAGERS);
    let mut seen: HashSet<usize> = live.iter().map(|m| *m as usize).collect();
    assert_eq!(seen.len(), LIVE_MANAGERS, "two live managers share a token");

    // One slot free, whatever order the table hands free slots out in: every cycle reuses it.
    let first = live.pop().unwrap();
    assert_eq!(unsafe { scm_release(first) }, SCM_S_OK);
    let mut released = vec![first];
    let mut served = 0;
    for _ in 0..CYCLES {
        let m = match create() {
            Ok(m) => m,
            // The slot is spent: it is retired rather than let a generation come round again.
            Err(hr) => {
                assert_eq!(hr, SCM_E_OUTOFMEMORY);
                break;
            }
        };
        assert!(seen.insert(m as usize), "token {:#x} handed out twice (after {served} cycles)", m as usize);
        served += 1;
        assert_eq!(unsafe { scm_release(m) }, SCM_S_OK);
        released.push(m);
    }
    eprintln!("the free slot served {served} managers in turn");
    for m in &released {
        assert_eq!(
            unsafe { scm_release(*m) },
            SCM_E_HANDLE,
            "released token {:#x} is live again",
            *m as usize
        );
    }
    for m in live {
        assert_eq!(unsafe { scm_release(m) }, SCM_S_OK);
    }
    assert_eq!(unsafe { scm_release(ptr::null_mut()) }, SCM_E_POINTER);
}
