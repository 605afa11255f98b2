//! Price models: the feature pipeline, gradient-boosted tree training and evaluation, XGBoost
//! model import, and the versioned model store. Synchronous; no async runtime.
