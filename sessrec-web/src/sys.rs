//! The libpam client calls the login needs: `pam_start`, `pam_authenticate`, `pam_acct_mgmt`,
//! `pam_end`, with a conversation that answers prompts from memory; and one malloc setting.
//! Nothing else is FFI.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

const PAM_SUCCESS: c_int = 0;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_CONV_ERR: c_int = 19;
const PAM_BUF_ERR: c_int = 5;
/// `pam_set_item` item type of the remote host.
const PAM_RHOST: c_int = 4;
/// Flags for `pam_authenticate`: fail when the account has no password rather than let it in.
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
}

/// What the conversation answers: the user name to echoed prompts, the password to hidden ones.
struct Answers {
    user: CString,
    password: CString,
}

/// Copies `s` into memory from `malloc` (libpam frees responses with `free`).
fn malloc_copy(s: &CStr) -> *mut c_char {
    let bytes = s.to_bytes_with_nul();
    // SAFETY: malloc of a non-zero size; a null result is checked by the caller.
    let p = unsafe { libc::malloc(bytes.len()) } as *mut c_char;
    if !p.is_null() {
        // SAFETY: `p` holds `bytes.len()` bytes and does not overlap `bytes`.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr() as *const c_char, p, bytes.len()) };
    }
    p
}

unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || num_msg > 32 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: `appdata` is the `Answers` that `authenticate` passed, alive for the whole
    // transaction.
    let answers = unsafe { &*(appdata as *const Answers) };
    let n = num_msg as usize;
    // SAFETY: calloc of n zeroed responses; checked for null below.
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes `msg` as a pointer to an array of `num_msg` message
        // pointers, each valid for the call.
        let m = unsafe { &**msg.add(i) };
        let answer = match m.msg_style {
            PAM_PROMPT_ECHO_OFF => Some(answers.password.as_c_str()),
            PAM_PROMPT_ECHO_ON => Some(answers.user.as_c_str()),
            _ => None,
        };
        if let Some(a) = answer {
            let p = malloc_copy(a);
            if p.is_null() {
                for j in 0..i {
                    // SAFETY: responses 0..i were filled by this loop with malloc'd strings
                    // (or null, which free accepts).
                    unsafe { libc::free((*replies.add(j)).resp as *mut c_void) };
                }
                // SAFETY: `replies` came from calloc above.
                unsafe { libc::free(replies as *mut c_void) };
                return PAM_BUF_ERR;
            }
            // SAFETY: `i < n`, inside the calloc'd array.
            unsafe { (*replies.add(i)).resp = p };
        }
    }
    // SAFETY: `resp` is non-null (checked); libpam takes ownership of the array.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// Closes the PAM transaction when dropped.
struct Transaction {
    handle: *mut PamHandle,
    status: c_int,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `handle` came from a successful pam_start and is ended exactly once.
        unsafe { pam_end(self.handle, self.status) };
    }
}

impl Transaction {
    fn error(&self, code: c_int) -> String {
        // SAFETY: pam_strerror returns a static string (or null) for any code.
        let p = unsafe { pam_strerror(self.handle, code) };
        if p.is_null() {
            format!("PAM error {code}")
        } else {
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }
}

/// Authenticates `user` with `password` through PAM service `service`, then checks the
/// account (expiry, `pam_access`...). `rhost` is the client's address, for the modules' logs.
pub fn authenticate(service: &str, user: &str, password: &str, rhost: &str) -> Result<(), String> {
    let to_c = |s: &str| CString::new(s).map_err(|_| "a NUL byte in the login".to_string());
    let service = to_c(service)?;
    let rhost = to_c(rhost)?;
    let answers = Box::new(Answers {
        user: to_c(user)?,
        password: to_c(password)?,
    });
    let conv = PamConv {
        conv: Some(converse),
        appdata_ptr: &*answers as *const Answers as *mut c_void,
    };
    let mut handle: *mut PamHandle = ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction (dropped after it);
    // libpam copies `conv`.
    let rc = unsafe { pam_start(service.as_ptr(), answers.user.as_ptr(), &conv, &mut handle) };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(format!("pam_start failed ({rc})"));
    }
    let mut tx = Transaction { handle, status: rc };
    // SAFETY: a valid handle; libpam copies the string.
    let rc = unsafe { pam_set_item(tx.handle, PAM_RHOST, rhost.as_ptr() as *const c_void) };
    if rc != PAM_SUCCESS {
        tx.status = rc;
        return Err(tx.error(rc));
    }
    // SAFETY: a valid handle; the conversation's data (`answers`) outlives the call.
    let rc = unsafe { pam_authenticate(tx.handle, PAM_DISALLOW_NULL_AUTHTOK) };
    if rc != PAM_SUCCESS {
        tx.status = rc;
        return Err(tx.error(rc));
    }
    // SAFETY: as above.
    let rc = unsafe { pam_acct_mgmt(tx.handle, PAM_DISALLOW_NULL_AUTHTOK) };
    tx.status = rc;
    if rc != PAM_SUCCESS {
        return Err(tx.error(rc));
    }
    drop(tx);
    drop(answers);
    Ok(())
}

/// Caps glibc's malloc arenas at two. glibc gives each thread that allocates while another
/// holds the lock an arena of its own (up to 8 per core), and every arena keeps its freed
/// memory: with record reads on the blocking pool's threads that is most of the console's
/// resident memory. Two arenas for two runtime workers.
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called once at start, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory freed by a finished request back to the kernel. A list over a large archive
/// allocates tens of megabytes for a moment; glibc keeps freed heap in its arenas, so without
/// this the console would stay at its largest page's size for the rest of its life.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own heaps to the
    // kernel; it takes the allocator's locks and touches no memory the program owns.
    unsafe {
        libc::malloc_trim(0);
    }
}
