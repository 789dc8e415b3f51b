"""Generative models on 28x28x1 images: VAEs and a DCGAN, as builders, with their gradients by hand.

    vae = conv_vae(latent=16)                  # serial(encoder, Reparameterize, decoder): x -> logits
    values, grads, state = elbo_grads(vae, params, state, images, key)      # -ELBO per image, d/dparams
    fake, g_state, g_cache = generator.forward(g_params, g_state, noise, train=True)
    d_loss, d_grads, d_state = discriminator_grads(discriminator, d_params, d_state, real, fake)
    g_loss, g_grads, d_state = generator_grads(generator, discriminator, g_params, g_cache, d_params, d_state, fake)

The VAE's likelihood is Bernoulli on pixel intensities in [0, 1] (the decoder gives logits; as the
PyTorch reference VAE), so -ELBO = sum_pixels BCE(logits, x) + KL(q(z|x) || N(0, I)), in nats per image.
The GAN's generator gradient is the discriminator's hand backward fed into the generator's: no autodiff.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import layers as L
from ..core import Layer
from ..layers.combinators import serial
from ..losses import gaussian_kl, sigmoid_binary_cross_entropy

IMAGE = (28, 28, 1)


def conv_vae(latent: int = 16, *, width: int = 16) -> Layer:
    """A convolutional VAE: encoder conv(w, s2)-conv(2w, s2)-Dense(2 latent) -> [mu | log_var],
    Reparameterize, decoder Dense(7*7*2w)-convT(w, s2)-convT(1, s2) -> pixel logits (B, 28, 28, 1)."""
    encoder = serial(L.Conv2D(width, 4, 2), L.Relu(), L.Conv2D(2 * width, 4, 2), L.Relu(), L.Flatten(),
                     L.Dense(2 * latent), name="encoder")
    decoder = serial(L.Dense(7 * 7 * 2 * width), L.Relu(), L.Reshape((7, 7, 2 * width)),
                     L.ConvTranspose2D(width, 4, 2), L.Relu(), L.ConvTranspose2D(1, 4, 2), name="decoder")
    return serial(encoder, L.Reparameterize(name="sample"), decoder, name="conv_vae")


def mlp_vae(latent: int = 20, *, hidden: int = 400) -> Layer:
    """PyTorch's reference VAE (pytorch/examples vae): 784-400-(20 mu, 20 log_var), 20-400-784 logits."""
    encoder = serial(L.Flatten(), L.Dense(hidden), L.Relu(), L.Dense(2 * latent), name="encoder")
    decoder = serial(L.Dense(hidden), L.Relu(), L.Dense(784), L.Reshape(IMAGE), name="decoder")
    return serial(encoder, L.Reparameterize(name="sample"), decoder, name="mlp_vae")


def _vae_forward(vae: Layer, params, state, images, key, train):
    encoder, sampler, decoder = vae.children
    stats, s_enc, c_enc = encoder.forward(params[0], state[0], images, train=train)
    z, s_smp, c_smp = sampler.forward(params[1], state[1], stats, key=key, train=train)
    logits, s_dec, c_dec = decoder.forward(params[2], state[2], z, train=train)
    mu, log_var = jnp.split(stats, 2, axis=-1)
    n = images.shape[0]
    reconstruction = sigmoid_binary_cross_entropy(logits, images, reduction="sum") / n
    kl = gaussian_kl(mu, log_var)
    values = {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
    return values, (s_enc, s_smp, s_dec), (c_enc, c_smp, c_dec), (mu, log_var, logits)


def negative_elbo(vae: Layer, params, state, images: jax.Array, key: jax.Array) -> dict:
    """-ELBO in nats per image with one z ~ q(z|x) per image, from `key` (evaluation mode):
    {"loss": reconstruction + kl, "reconstruction": sum_pixels BCE, "kl": KL to N(0, I)}, batch means."""
    return _vae_forward(vae, params, state, images, key, False)[0]


def elbo_grads(vae: Layer, params, state, images: jax.Array, key: jax.Array) -> tuple:
    """(values, grads, new_state) of -ELBO per image (see `negative_elbo`), in training mode, by hand:
    dlogits = (sigmoid(logits) - x) / B -> decoder.backward -> dz -> Reparameterize.backward
    -> dstats, plus (dmu, dlog_var) of the KL -> encoder.backward. `key` draws eps for the sampler."""
    encoder, sampler, decoder = vae.children
    values, new_state, caches, (mu, log_var, logits) = _vae_forward(vae, params, state, images, key, True)
    n = images.shape[0]
    dlogits = sigmoid_binary_cross_entropy.grad(logits, images, reduction="sum") / n
    d_dec, dz = decoder.backward(params[2], caches[2], dlogits)
    d_smp, dstats = sampler.backward(params[1], caches[1], dz)
    dmu, dlog_var = gaussian_kl.grad(mu, log_var)
    d_enc, _ = encoder.backward(params[0], caches[0], dstats + jnp.concatenate([dmu, dlog_var], axis=-1))
    return values, (d_enc, d_smp, d_dec), new_state


def dcgan_generator(latent: int = 64, *, width: int = 32) -> Layer:
    """DCGAN's generator for 28x28: Dense(7*7*2w)-BN-ReLU -> convT(w, 4, s2)-BN-ReLU -> convT(1, 4, s2)
    -> tanh, noise (B, latent) -> images (B, 28, 28, 1) in [-1, 1]."""
    return serial(L.Dense(7 * 7 * 2 * width, use_bias=False), L.BatchNorm(), L.Relu(),
                  L.Reshape((7, 7, 2 * width)), L.ConvTranspose2D(width, 4, 2, use_bias=False), L.BatchNorm(),
                  L.Relu(), L.ConvTranspose2D(1, 4, 2), L.Tanh(), name="generator")


def dcgan_discriminator(*, width: int = 32) -> Layer:
    """DCGAN's discriminator for 28x28: conv(w, 4, s2)-LeakyReLU(0.2) -> conv(2w, 4, s2)-LeakyReLU(0.2)
    -> Dense(1), images (B, 28, 28, 1) -> logits (B, 1) that the image is real."""
    return serial(L.Conv2D(width, 4, 2), L.LeakyRelu(0.2), L.Conv2D(2 * width, 4, 2), L.LeakyRelu(0.2),
                  L.Flatten(), L.Dense(1), name="discriminator")


def discriminator_grads(discriminator: Layer, params, state, real: jax.Array, fake: jax.Array) -> tuple:
    """(loss, grads, new_state) of BCE(D(real), 1) + BCE(D(fake), 0), each a mean over its batch; the
    two halves run apart (each with its own batch statistics, as PyTorch's DCGAN), grads added."""
    loss, grads = 0.0, None
    for images, label in ((real, 1.0), (fake, 0.0)):
        logits, state, cache = discriminator.forward(params, state, images, train=True)
        target = jnp.full_like(logits, label)
        loss = loss + sigmoid_binary_cross_entropy(logits, target)
        d, _ = discriminator.backward(params, cache, sigmoid_binary_cross_entropy.grad(logits, target))
        grads = d if grads is None else jax.tree.map(jnp.add, grads, d)
    return loss, grads, state


def generator_grads(generator: Layer, discriminator: Layer, g_params, g_cache, d_params, d_state,
                    fake: jax.Array) -> tuple:
    """(loss, grads, new d_state) of the non-saturating loss -log sigmoid(D(G(noise))) = BCE(D(fake), 1),
    by hand: dfake from the discriminator's backward (its dparams dropped), then generator.backward
    with `g_cache`, the cache of the forward that made `fake`."""
    logits, d_state, d_cache = discriminator.forward(d_params, d_state, fake, train=True)
    target = jnp.ones_like(logits)
    _, dfake = discriminator.backward(d_params, d_cache, sigmoid_binary_cross_entropy.grad(logits, target))
    grads, _ = generator.backward(g_params, g_cache, dfake)
    return sigmoid_binary_cross_entropy(logits, target), grads, d_state


def feature_classifier(num_classes: int = 10, *, width: int = 16, features: int = 64) -> Layer:
    """A small CNN whose penultimate layer gives the features of a Frechet distance:
    serial(features = conv(w, s2)-ReLU-conv(2w, s2)-ReLU-Dense(features)-ReLU, head = Dense(num_classes))."""
    body = serial(L.Conv2D(width, 3, 2), L.Relu(), L.Conv2D(2 * width, 3, 2), L.Relu(), L.Flatten(),
                  L.Dense(features), L.Relu(), name="features")
    return serial(body, L.Dense(num_classes, name="head"), name="feature_classifier")
