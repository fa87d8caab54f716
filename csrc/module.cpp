// Importing gru_cuda._C loads this library, whose static initialisers register the ops.
// The saved workspace's layout, the persistent plan's refusals, forms and fields and the
// persistent kernels' counts are exported so that Python follows the C++ definitions.
#include <Python.h>

#include "gru_cell.h"
#include "persistent/persistent_plan.h"
#include "persistent/persistent_switch.h"

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr &&
      (PyModule_AddIntConstant(module, "SAVED_BLOCKS", gru_cuda::kSavedBlocks) != 0 ||
       PyModule_AddStringConstant(module, "SAVED_BLOCK_NAMES", gru_cuda::kSavedBlockNames) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_REFUSALS",
                                  gru_cuda::kPersistentRefusalNames) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_PLAN_FIELDS",
                                  gru_cuda::kPersistentPlanFields) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_FORMS",
                                  gru_cuda::kPersistentFormNames) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_COUNTS",
                                  gru_cuda::kPersistentCountNames) != 0)) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
