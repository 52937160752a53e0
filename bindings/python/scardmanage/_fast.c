/* scardmanage._fast: the optional compiled call path for SCardManage.status() and .transmit().
 *
 * ctypes' call machinery costs a few hundred nanoseconds per call; these two functions make the
 * same calls from C. The extension is not linked against libscardmanage: the package loads the
 * library with ctypes as always and hands the two function addresses over with bind(), which
 * returns a Binding whose status() and transmit() call them. The addresses live in that object,
 * not in this module: a second import of the package with another SCARDMANAGE_LIBRARY binds
 * the other library's functions and the first package's managers keep calling their own (the
 * libraries' tokens repeat, so a shared binding would send a token to the wrong manager).
 * Each call releases the GIL around the library call, as ctypes does. On failure a function
 * returns the (negative) result as an int and the package raises its SCardError, so both call
 * paths raise the same errors.
 *
 * The module does not declare Py_mod_gil: the scratch pool below is guarded by the GIL alone,
 * so a free-threaded interpreter rightly turns the GIL back on when it imports this module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>

typedef int32_t (*status_fn)(void *m, uint32_t *state, uint32_t *protocol);
typedef int32_t (*transmit_fn)(void *m, const uint8_t *command, size_t command_len, uint8_t *response,
                               size_t *response_len);

typedef struct {
    PyObject_HEAD
    status_fn scm_status;
    transmit_fn scm_transmit;
} Binding;

static PyTypeObject BindingType;

/* Every binding's buffers have this size: the first bind() sets it. */
static size_t response_capacity;

/* Response buffers of response_capacity bytes, reused across calls. Taken and given back with
 * the GIL held, so each call owns the one it took while the GIL is released; the pool holds as
 * many as calls ever ran at once. */
struct scratch {
    struct scratch *next;
    uint8_t bytes[];
};
static struct scratch *free_scratch;

static int token_of(PyObject *object, void **token)
{
    *token = PyLong_AsVoidPtr(object);
    return *token == NULL && PyErr_Occurred() ? -1 : 0;
}

static PyObject *bind(PyObject *module, PyObject *args)
{
    PyObject *status_address, *transmit_address;
    Py_ssize_t capacity;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOn:bind", &status_address, &transmit_address, &capacity))
        return NULL;
    void *status = PyLong_AsVoidPtr(status_address);
    if (status == NULL)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "bind: no scm_status address");
    void *transmit = PyLong_AsVoidPtr(transmit_address);
    if (transmit == NULL)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "bind: no scm_transmit address");
    if (capacity <= 0)
        return PyErr_Format(PyExc_ValueError, "bind: the response capacity must be positive");
    /* Buffers already pooled have the first capacity. */
    if (response_capacity != 0 && (size_t)capacity != response_capacity)
        return PyErr_Format(PyExc_ValueError, "bind: already bound with another capacity");
    Binding *binding = PyObject_New(Binding, &BindingType);
    if (binding == NULL)
        return NULL;
    /* Object pointer to function pointer: what dlsym() callers do; POSIX guarantees it works. */
    binding->scm_status = (status_fn)(uintptr_t)status;
    binding->scm_transmit = (transmit_fn)(uintptr_t)transmit;
    response_capacity = (size_t)capacity;
    return (PyObject *)binding;
}

/* status(token) -> (state, protocol), or the result (an int) if it failed. */
static PyObject *status(PyObject *self, PyObject *token_object)
{
    void *token;
    uint32_t state = 0, protocol = 0;
    int32_t hresult;
    status_fn scm_status = ((Binding *)self)->scm_status;
    if (token_of(token_object, &token) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    hresult = scm_status(token, &state, &protocol);
    Py_END_ALLOW_THREADS
    if (hresult < 0)
        return PyLong_FromLong(hresult);
    PyObject *result = PyTuple_New(2);
    if (result == NULL)
        return NULL;
    PyObject *item = PyLong_FromUnsignedLong(state);
    if (item == NULL)
        goto fail;
    PyTuple_SET_ITEM(result, 0, item);
    item = PyLong_FromUnsignedLong(protocol);
    if (item == NULL)
        goto fail;
    PyTuple_SET_ITEM(result, 1, item);
    return result;
fail:
    Py_DECREF(result);
    return NULL;
}

/* transmit(token, command) -> the answer (bytes), or the result (an int) if it failed. The
 * command is anything bytes() accepts, as on the ctypes path. */
static PyObject *transmit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *token;
    PyObject *command;
    struct scratch *scratch;
    size_t length;
    int32_t hresult;
    PyObject *answer = NULL;
    transmit_fn scm_transmit = ((Binding *)self)->scm_transmit;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "transmit() takes 2 arguments (%zd given)", nargs);
    if (token_of(args[0], &token) < 0)
        return NULL;
    if (PyBytes_CheckExact(args[1])) {
        command = args[1];
        Py_INCREF(command);
    } else {
        /* bytes(command): the same conversion, and the same errors, as the ctypes path. */
        command = PyObject_CallFunctionObjArgs((PyObject *)&PyBytes_Type, args[1], NULL);
        if (command == NULL)
            return NULL;
    }
    scratch = free_scratch;
    if (scratch != NULL) {
        free_scratch = scratch->next;
    } else {
        scratch = malloc(sizeof *scratch + response_capacity);
        if (scratch == NULL) {
            Py_DECREF(command);
            return PyErr_NoMemory();
        }
    }
    length = response_capacity;
    /* The bytes object is immutable and referenced here: its buffer stays valid without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    hresult = scm_transmit(token, (const uint8_t *)PyBytes_AS_STRING(command), (size_t)PyBytes_GET_SIZE(command),
                           scratch->bytes, &length);
    Py_END_ALLOW_THREADS
    Py_DECREF(command);
    if (hresult < 0)
        answer = PyLong_FromLong(hresult);
    else
        answer = PyBytes_FromStringAndSize((const char *)scratch->bytes, (Py_ssize_t)length);
    scratch->next = free_scratch;
    free_scratch = scratch;
    return answer;
}

static PyMethodDef binding_methods[] = {
    {"status", status, METH_O, "status(token) -> (state, protocol), or the failed result as an int."},
    {"transmit", (PyCFunction)(void (*)(void))transmit, METH_FASTCALL,
     "transmit(token, command) -> the answer as bytes, or the failed result as an int."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BindingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scardmanage._fast.Binding",
    .tp_basicsize = sizeof(Binding),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One library's scm_status and scm_transmit; made by bind().",
    .tp_methods = binding_methods,
};

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(scm_status_address, scm_transmit_address, response_capacity) -> a Binding of those functions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "scardmanage._fast",
    "The optional compiled call path of scardmanage's status() and transmit().",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    if (PyType_Ready(&BindingType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
