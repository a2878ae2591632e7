<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- xsomo: normalised anomaly (z-score), diverging BrBG centred on 0, -3..3. Shipped with xsomo (xsomo/data) and the QGIS plugin; one copy. -->
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="-3.0" classificationMax="3.0">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="2" minimumValue="-3.0" maximumValue="3.0" clip="0" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="84,48,5,255"/>
              <Option type="QString" name="color2" value="0,60,48,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.1;140,81,10,255:0.2;191,129,45,255:0.3;223,194,125,255:0.4;246,232,195,255:0.5;245,245,245,255:0.6;199,234,229,255:0.7;128,205,193,255:0.8;53,151,143,255:0.9;1,102,94,255"/>
            </Option>
            <prop k="color1" v="84,48,5,255"/>
            <prop k="color2" v="0,60,48,255"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="0.1;140,81,10,255:0.2;191,129,45,255:0.3;223,194,125,255:0.4;246,232,195,255:0.5;245,245,245,255:0.6;199,234,229,255:0.7;128,205,193,255:0.8;53,151,143,255:0.9;1,102,94,255"/>
          </colorramp>
            <item alpha="255" value="-3" label="-3" color="#543005"/>
            <item alpha="255" value="-2.5" label="-2.5" color="#834c09"/>
            <item alpha="255" value="-2" label="-2" color="#ae7121"/>
            <item alpha="255" value="-1.5" label="-1.5" color="#cfa255"/>
            <item alpha="255" value="-1" label="-1" color="#e7cf94"/>
            <item alpha="255" value="-0.5" label="-0.5" color="#f6eacb"/>
            <item alpha="255" value="0" label="0" color="#f5f5f5"/>
            <item alpha="255" value="0.5" label="0.5" color="#cfece8"/>
            <item alpha="255" value="1" label="1" color="#98d7cd"/>
            <item alpha="255" value="1.5" label="1.5" color="#5ab2a8"/>
            <item alpha="255" value="2" label="2" color="#24877f"/>
            <item alpha="255" value="2.5" label="2.5" color="#015f56"/>
            <item alpha="255" value="3" label="3" color="#003c30"/>
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix="" direction="0" useContinuousLegend="1" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="6"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="false"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="false"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" grayscaleMode="0" saturation="0" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
