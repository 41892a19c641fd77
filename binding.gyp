{
  "targets": [
    {
      "target_name": "evomerge_kernels",
      "sources": [
        "src/merge/native/binding.cc",
        "src/merge/native/convert.cc",
        "src/merge/native/linear.cc",
        "src/merge/native/task-vector.cc",
        "src/merge/native/rank-mask.cc",
        "src/merge/native/random-mask.cc",
        "src/merge/native/masked-l1.cc",
        "src/merge/native/gram.cc",
        "src/merge/native/slerp-mix.cc",
        "src/merge/native/model-stock-mix.cc",
        "src/merge/native/nearswap.cc",
        "src/merge/native/sce-variance.cc",
        "src/merge/native/multislerp.cc",
        "src/merge/native/karcher.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags": ["-O3", "-ffp-contract=off", "-fno-fast-math"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fexceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-fno-fast-math"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/O2", "/fp:precise"] }
      }
    },
    {
      "target_name": "evomerge_train_kernels",
      "sources": [
        "src/train/native/train-binding.cc",
        "src/train/native/gemm.cc",
        "src/train/native/attention.cc",
        "src/train/native/elementwise.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags": ["-O3", "-ffp-contract=off", "-fno-fast-math", "-pthread"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fexceptions", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-fno-fast-math"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/O2", "/fp:precise"] }
      }
    }
  ]
}
